//! HTTP handlers for `/api/v1/reports/…`: each checks the caller and computes one report.

use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::reports::flow::{self, FlowParams, FlowReport};
use crate::web::auth::CurrentUser;
use crate::web::extract::Query;
use crate::web::respond::{accepts, csv_download as csv_response};

/// Reports read every item of a board: the team's roles (viewer and up), not requesters.
pub fn require_reader(caller: &CurrentUser) -> Result<(), ApiError> {
    caller.require(Role::Viewer)
}

/// The flow report of a board.
///
/// Cycle time and lead time of the items finished in `[from, to]` (`n`, nearest-rank
/// `p50`/`p85`/`p95` in whole days, `null` with a `note` under 5 values, and the items),
/// finishes per ISO week (`partial` where the range cuts a week), WIP at the end of each day,
/// the cumulative flow per column in board order, the aging of open started items at `asof`
/// and the service level expectation (the p85 cycle time and the open items already older).
/// Days are local dates in Europe/Berlin. Definitions: README, "Reports". Filters: `service`,
/// `type`, `label`. With `Accept: text/csv` and `section` one table comes as CSV (`dialect`
/// `excel-de` by default, or `rfc4180`). Viewer and up.
#[utoipa::path(
    tag = "reports",
    params(FlowParams),
    responses(
        (status = 200, description = "The flow report",
            content((FlowReport = "application/json"), (String = "text/csv"))),
        (status = 422, description = "An unknown board or service, a range the wrong way round", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/reports/flow")]
pub async fn flow_report(
    db: web::Data<Db>,
    caller: CurrentUser,
    params: Query<FlowParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let params = params.0;
    let csv = accepts(&req, "text/csv");
    if csv && params.section.is_none() {
        return Err(ApiError::invalid(
            "section",
            "name the table to download: cycle_time, lead_time, throughput, wip, cfd or aging",
        ));
    }
    let query = params.clone();
    let report = db.run(move |conn| flow::report(conn, &query)).await?;
    match params.section.filter(|_| csv) {
        Some(section) => {
            let body = flow::csv_table(&report, section, params.dialect.unwrap_or_default())?;
            Ok(csv_response(body, &format!("flow-{}.csv", report.board)))
        }
        None => Ok(HttpResponse::Ok().json(report)),
    }
}
