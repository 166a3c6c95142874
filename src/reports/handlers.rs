//! HTTP handlers for `/api/v1/reports/…`: each checks the caller and computes one report.

use actix_web::{HttpRequest, HttpResponse, get, post, web};

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::reports::charts;
use crate::reports::flow::{self, FlowParams, FlowReport};
use crate::reports::forecast::{self, Forecast, ForecastRequest};
use crate::reports::governance::{self, GovernanceFormat, GovernanceParams, GovernanceReport};
use crate::reports::sla::{self, SlaParams, SlaReport};
use crate::web::auth::CurrentUser;
use crate::web::extract::{Json, Query};
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

/// An SVG chart: no script and no external resource may run or load even if opened directly.
pub fn svg_response(svg: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_TYPE,
            "image/svg+xml; charset=utf-8",
        ))
        .insert_header((
            actix_web::http::header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(svg)
}

type Draw = fn(&FlowReport, flow::Lang) -> Result<String, ApiError>;

async fn flow_chart(
    db: web::Data<Db>,
    caller: CurrentUser,
    params: FlowParams,
    draw: Draw,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let lang = params.lang.unwrap_or_default();
    let svg = db
        .run(move |conn| {
            let report = flow::report(conn, &params)?;
            draw(&report, lang)
        })
        .await?;
    Ok(svg_response(svg))
}

/// The cumulative flow diagram as SVG.
///
/// One band per column in board order (the first column on top): the items in that column or
/// a later one at the end of each day. Same parameters as the flow report; `lang` `de`
/// (default) or `en`. Viewer and up.
#[utoipa::path(
    tag = "reports",
    params(FlowParams),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        (status = 422, description = "An unknown board or service, a range the wrong way round", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/reports/flow/cfd.svg")]
pub async fn flow_cfd_svg(
    db: web::Data<Db>,
    caller: CurrentUser,
    params: Query<FlowParams>,
) -> Result<HttpResponse, ApiError> {
    flow_chart(db, caller, params.0, charts::cfd).await
}

/// The cycle-time scatter plot as SVG.
///
/// Each item finished in the range at its finish date and cycle days, with dashed lines at
/// the p50, p85 and p95 ("85 % ≤ 14 Tage"). Same parameters as the flow report. Viewer and up.
#[utoipa::path(
    tag = "reports",
    params(FlowParams),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        (status = 422, description = "An unknown board or service, a range the wrong way round", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/reports/flow/cycle-time.svg")]
pub async fn flow_cycle_time_svg(
    db: web::Data<Db>,
    caller: CurrentUser,
    params: Query<FlowParams>,
) -> Result<HttpResponse, ApiError> {
    flow_chart(db, caller, params.0, charts::cycle_time).await
}

/// Weekly throughput as SVG.
///
/// Finishes per ISO week; weeks the range cuts are drawn lighter. Same parameters as the flow
/// report. Viewer and up.
#[utoipa::path(
    tag = "reports",
    params(FlowParams),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        (status = 422, description = "An unknown board or service, a range the wrong way round", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/reports/flow/throughput.svg")]
pub async fn flow_throughput_svg(
    db: web::Data<Db>,
    caller: CurrentUser,
    params: Query<FlowParams>,
) -> Result<HttpResponse, ApiError> {
    flow_chart(db, caller, params.0, charts::throughput).await
}

/// The aging chart as SVG.
///
/// Each open started item at `asof` in its column at its age in days, against dashed lines at
/// the finished items' p50, p85 and p95. Same parameters as the flow report. Viewer and up.
#[utoipa::path(
    tag = "reports",
    params(FlowParams),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        (status = 422, description = "An unknown board or service, a range the wrong way round", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/reports/flow/aging.svg")]
pub async fn flow_aging_svg(
    db: web::Data<Db>,
    caller: CurrentUser,
    params: Query<FlowParams>,
) -> Result<HttpResponse, ApiError> {
    flow_chart(db, caller, params.0, charts::aging).await
}

/// Forecast with Monte Carlo.
///
/// From the board's daily throughput (default: the 90 days before today, with the filters
/// `service`, `type`, `label`), each of `trials` trials (default 10,000; 1,000–100,000) draws
/// one historical day's throughput per simulated day, with replacement. `mode` `when` with
/// `items`: the day by which they are done at p50/p70/p85/p95; `how_many` with `until`: at
/// least how many are done by then with probability p. `days` `workdays` counts and simulates
/// business days only. The same `seed` gives the same answer (ChaCha8); the answer names the
/// seed used. Warnings when the history is shorter than 30 days or mostly without finishes; a
/// history without finishes is a 422. Writes nothing. Viewer and up.
#[utoipa::path(
    tag = "reports",
    request_body = ForecastRequest,
    responses(
        (status = 200, description = "The forecast", body = Forecast),
        (status = 422, description = "Invalid input, or a history without finishes", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/forecasts")]
pub async fn create_forecast(
    db: web::Data<Db>,
    caller: CurrentUser,
    body: Json<ForecastRequest>,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let request = body.0;
    let answer = db
        .run(move |conn| forecast::forecast(conn, &request))
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// SLA compliance per month, service and severity.
///
/// Resolution clocks of incidents by Jira Service Management's rule: `met` and
/// `breached_completed` count in the month the incident was resolved, `breached_open` in the
/// month its clock breached; open clocks not yet breached are left out. `success_share` =
/// met / (met + breached_completed + breached_open). `resolution_hours_p50`/`p85`: nearest
/// rank over the resolved incidents' business hours (pauses excluded), `null` under 5.
/// `months` sums each month. With `Accept: text/csv` the rows come as CSV (`dialect`).
/// Viewer and up.
#[utoipa::path(
    tag = "reports",
    params(SlaParams),
    responses(
        (status = 200, description = "The SLA report",
            content((SlaReport = "application/json"), (String = "text/csv"))),
        (status = 422, description = "An unknown service, a range the wrong way round", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/reports/sla")]
pub async fn sla_report(
    db: web::Data<Db>,
    caller: CurrentUser,
    params: Query<SlaParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let params = params.0;
    let dialect = params.dialect.unwrap_or_default();
    let report = db.run(move |conn| sla::report(conn, &params)).await?;
    if accepts(&req, "text/csv") {
        return Ok(csv_response(sla::csv(&report, dialect)?, "sla.csv"));
    }
    Ok(HttpResponse::Ok().json(report))
}

/// SLA compliance per month as SVG.
///
/// Stacked bars of met, breached-completed and breached-open resolution clocks per month,
/// the success share above each. Same parameters as the SLA report. Viewer and up.
#[utoipa::path(
    tag = "reports",
    params(SlaParams),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        (status = 422, description = "An unknown service, a range the wrong way round", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/reports/sla.svg")]
pub async fn sla_svg(
    db: web::Data<Db>,
    caller: CurrentUser,
    params: Query<SlaParams>,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let params = params.0;
    let lang = params.lang.unwrap_or_default();
    let svg = db
        .run(move |conn| charts::sla(&sla::report(conn, &params)?, lang))
        .await?;
    Ok(svg_response(svg))
}

/// The monthly governance report.
///
/// For `month` (`YYYY-MM`): the portfolio (services by lifecycle, kind and maturity, services
/// added), demands (decided this month with decisions, pending by age, the roadmap of the next
/// two quarters), incidents (by severity, SLA compliance against last month), flow per board
/// (throughput of the last six months, cycle-time percentiles of the month, items older than
/// the SLE) and the decisions needed (pending demands older than 30 days, breached SLAs, items
/// older than the p95 cycle time, blocked rollout entries), each with its key and accountable
/// person; the rollout (progress by service and by district, entries gone live this month, the
/// blocked and the overdue entries with who answers for them). As JSON, as one printable
/// self-contained HTML page with the charts inline (`format=html` or `Accept: text/html`), or
/// as Markdown (`format=markdown` or `Accept: text/markdown`). `opsboard report governance
/// --month 2027-01 --format html` writes the same. Viewer and up.
#[utoipa::path(
    tag = "reports",
    params(GovernanceParams),
    responses(
        (status = 200, description = "The governance report",
            content((GovernanceReport = "application/json"), (String = "text/html"), (String = "text/markdown"))),
        (status = 422, description = "A missing or malformed month", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/reports/governance")]
pub async fn governance_report(
    db: web::Data<Db>,
    rollout: web::Data<crate::rollout::RolloutSettings>,
    caller: CurrentUser,
    params: Query<GovernanceParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let params = params.0;
    let format = params.format.unwrap_or(if accepts(&req, "text/html") {
        GovernanceFormat::Html
    } else if accepts(&req, "text/markdown") {
        GovernanceFormat::Markdown
    } else {
        GovernanceFormat::Json
    });
    let month = params.month.clone();
    let report = db
        .run(move |conn| governance::report(conn, &rollout, month.as_deref()))
        .await?;
    Ok(match format {
        GovernanceFormat::Json => HttpResponse::Ok().json(report),
        GovernanceFormat::Html => HttpResponse::Ok()
            .insert_header((
                actix_web::http::header::CONTENT_TYPE,
                "text/html; charset=utf-8",
            ))
            .insert_header((
                actix_web::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ))
            .body(governance::html(&report)),
        GovernanceFormat::Markdown => HttpResponse::Ok()
            .insert_header((
                actix_web::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8",
            ))
            .body(governance::markdown(&report)),
    })
}
