//! HTTP handlers for `/api/v1/incidents`.

use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::pagination::Page;
use crate::incidents::model::{self, IncidentFilter};
use crate::items::types::Item;
use crate::web::auth::CurrentUser;
use crate::web::extract::Query;
use crate::web::respond::PageResponse;

/// List incidents by SLA state.
///
/// What needs attention: `breached=true` lists incidents whose response or resolution target
/// is breached; `due_within=120` lists open ones whose next target falls due within two hours
/// and is not breached yet. Also filters by `severity`, affected `service` and `open`. In id
/// order. Each item carries its `sla`. Viewer and up.
#[utoipa::path(
    tag = "incidents",
    params(IncidentFilter),
    responses((status = 200, description = "One page of incidents", body = Page<Item>,
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/incidents")]
pub async fn list_incidents(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<IncidentFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let (filter, me) = (filter.0, caller.id());
    let page = db.run(move |conn| model::list(conn, &filter, me)).await?;
    Ok(page.respond(&req))
}
