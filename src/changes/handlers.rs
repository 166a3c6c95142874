//! HTTP handlers of the changes feed: a page after a cursor (with an optional long poll) and
//! the current position.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::changes::model::{self, ChangeFilter, ChangePage, FeedHead};
use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::web::auth::CurrentUser;
use crate::web::extract::Query;

/// How often a waiting long poll looks at the database even when this process committed
/// nothing: another instance on the same PostgreSQL database may have.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Follow every change.
///
/// Every history event of every entity — items with their comments, links, RACI, moves and
/// decisions; services; boards; users and their tokens; organizations; SLA policies — in
/// commit order, each with its position `seq`, its entity's key, who made it and with which
/// `origin`, and for item events the item as it was right after the change.
///
/// The guarantee: a client that pages with `after=<next_cursor>` sees every committed event
/// exactly once and in `seq` order; no event becomes visible behind a cursor already
/// returned, even when transactions commit out of the order they began. `next_cursor` is
/// always set, also on an empty page. To start, take a snapshot (`GET /items`) after reading
/// `GET /changes/head`, then follow from that head. With `wait=N` an empty page waits up to N
/// seconds for the next event. A cursor of another database, or one beyond this database's
/// history (a restore), is a 410 `cursor-expired`: start again from the head.
///
/// Viewer and up (requesters follow their demands through `GET /activity`).
#[utoipa::path(
    tag = "changes",
    params(ChangeFilter),
    responses(
        (status = 200, description = "The events after the cursor", body = ChangePage,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` when more events follow right away"))),
        (status = 410, description = "The cursor cannot be resumed here (`cursor-expired`)",
            body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/changes")]
pub async fn list_changes(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<ChangeFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let filter = filter.0;
    let deadline = Instant::now() + filter.wait()?;
    let mut commits = db.commits();
    let page = loop {
        // Seen before the query: a commit after it wakes the wait below at once.
        commits.borrow_and_update();
        let query = filter.clone();
        let page = db.run(move |conn| model::page(conn, &query)).await?;
        let now = Instant::now();
        if !page.items.is_empty() || now >= deadline {
            break page;
        }
        let slice = (deadline - now).min(POLL_INTERVAL);
        // Either a commit of this process or the interval: look again. No connection is held.
        let _ = actix_web::rt::time::timeout(slice, commits.changed()).await;
    };
    Ok(respond(&req, page))
}

fn respond(req: &HttpRequest, page: ChangePage) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if page.has_more {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
            if name != "after" && name != "wait" {
                query.append_pair(&name, &value);
            }
        }
        query.append_pair("after", &page.next_cursor);
        response.insert_header((
            header::LINK,
            format!("<{}?{}>; rel=\"next\"", req.path(), query.finish()),
        ));
    }
    response.json(page)
}

/// The feed's current position.
///
/// The cursor to follow the feed from now on: a new client reads this first, then takes its
/// snapshot (`GET /items?include_deleted=true`, …), then follows `GET /changes?after=<cursor>`
/// — anything that changed during the snapshot comes again through the feed, nothing is
/// missed. Viewer and up.
#[utoipa::path(
    tag = "changes",
    responses((status = 200, description = "The position of the latest event", body = FeedHead))
)]
#[get("/changes/head")]
pub async fn changes_head(
    db: web::Data<Db>,
    caller: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let head = db.run(model::head).await?;
    Ok(HttpResponse::Ok().json(head))
}
