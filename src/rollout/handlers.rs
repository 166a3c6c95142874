//! HTTP handlers of the rollout: waves, entries, the plan, the matrix, the progress.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, put, web};

use crate::common::actor::{Role, Visibility};
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::version::Precondition;
use crate::rollout::entries::{self, Outcome};
use crate::rollout::matrix;
use crate::rollout::model::{
    BlockedEntry, EntryChanges, Matrix, MatrixFilter, MatrixUploadReport, NewWave, PlanReport,
    Progress, ProgressQuery, RolloutEntry, RolloutPlan, RolloutSettings, Wave, WaveChanges,
};
use crate::rollout::waves;
use crate::web::auth::CurrentUser;
use crate::web::extract::{Json, Query};
use crate::web::params::{ItemKeyPath, ServiceKeyPath};
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::{created, ok_with_etag};

/// `{service}/{administration}` of `/rollout/{service}/{administration}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EntryPath {
    /// The service's key, such as `wohngeld`
    pub service: String,
    /// The administration's short name, such as `A-CRIVITZ`
    pub administration: String,
}

/// `{key}/{name}` of `/services/{key}/waves/{name}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WavePath {
    /// The service's key
    pub key: String,
    /// The wave's name
    pub name: String,
}

/// What a caller may read of the rollout: everything (viewer and up), or one
/// administration's row (a requester: their own organization's; none without one).
fn readable_row(caller: &CurrentUser) -> Result<Option<Option<i64>>, ApiError> {
    if caller.role().at_least(Role::Viewer) {
        return Ok(None);
    }
    match caller.visibility() {
        Visibility::Organization(org) => Ok(Some(org)),
        Visibility::All => Ok(None),
    }
}

/// List the waves of a service.
///
/// By planned go-live, each with how many entries belong to it. Viewers and up.
#[utoipa::path(
    tag = "rollout",
    params(ServiceKeyPath),
    responses((status = 200, description = "The waves", body = Vec<Wave>))
)]
#[get("/services/{key}/waves")]
pub async fn list_waves(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let list = db.run(move |conn| waves::list(conn, &key)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Create a wave of a service.
///
/// Members and up. The name is unique within the service (409 otherwise).
#[utoipa::path(
    tag = "rollout",
    params(ServiceKeyPath),
    request_body = NewWave,
    responses((status = 201, description = "The wave", body = Wave,
        headers(("ETag" = String, description = "Its version"),
                ("Location" = String, description = "The wave's URL"))))
)]
#[post("/services/{key}/waves")]
pub async fn create_wave(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    body: Json<NewWave>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let key = key.into_inner();
    let wave = db
        .transaction(move |conn| waves::create(conn, &key, &body.0, &actor))
        .await?;
    let location = format!(
        "/api/v1/services/{}/waves/{}",
        wave.service,
        urlencoding(&wave.name)
    );
    Ok(created(&wave, &location, wave.version))
}

/// Percent-encodes a path segment.
fn urlencoding(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Get a wave.
///
/// By its name within the service, with how many entries belong to it. Viewers and up.
#[utoipa::path(
    tag = "rollout",
    params(WavePath),
    responses((status = 200, description = "The wave", body = Wave,
        headers(("ETag" = String, description = "Its version"))))
)]
#[get("/services/{key}/waves/{name}")]
pub async fn get_wave(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let (key, name) = path.into_inner();
    let wave = db.run(move |conn| waves::find(conn, &key, &name)).await?;
    Ok(ok_with_etag(&wave, wave.version))
}

/// Change a wave.
///
/// Members and up; only the fields present change. Honours `If-Match`.
#[utoipa::path(
    tag = "rollout",
    params(WavePath, IfMatchHeader),
    request_body = WaveChanges,
    responses((status = 200, description = "The changed wave", body = Wave,
        headers(("ETag" = String, description = "Its new version"))))
)]
#[patch("/services/{key}/waves/{name}")]
pub async fn update_wave(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, String)>,
    if_match: Precondition,
    body: Json<WaveChanges>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let (key, name) = path.into_inner();
    let wave = db
        .transaction(move |conn| waves::update(conn, &key, &name, &body.0, &actor, if_match))
        .await?;
    Ok(ok_with_etag(&wave, wave.version))
}

/// List rollout entries.
///
/// In id order, one page at a time; filter by service, administration, status, `blocked`,
/// `overdue` and `updated_since` (for a script that mirrors the rollout). Viewers and up; a requester gets
/// their own administration's entries only.
#[utoipa::path(
    tag = "rollout",
    params(crate::rollout::model::EntryFilter),
    responses((status = 200, description = "One page of entries",
        body = crate::common::pagination::Page<RolloutEntry>,
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/rollout")]
pub async fn list_entries(
    db: web::Data<Db>,
    settings: web::Data<RolloutSettings>,
    caller: CurrentUser,
    filter: Query<crate::rollout::model::EntryFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    use crate::web::respond::PageResponse;
    let only = readable_row(&caller)?;
    let filter = filter.0;
    let page = db
        .run(move |conn| entries::list(conn, &settings, &filter, only))
        .await?;
    Ok(page.respond(&req))
}

/// Get a rollout entry.
///
/// Viewers and up; a requester only their own administration's entries (404 for others).
#[utoipa::path(
    tag = "rollout",
    params(EntryPath),
    responses((status = 200, description = "The entry", body = RolloutEntry,
        headers(("ETag" = String, description = "Its version"))))
)]
#[get("/rollout/{service}/{administration}")]
pub async fn get_entry(
    db: web::Data<Db>,
    settings: web::Data<RolloutSettings>,
    caller: CurrentUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let only = readable_row(&caller)?;
    let (service, administration) = path.into_inner();
    let entry = db
        .run(move |conn| {
            if let Some(only) = only {
                let admin = entries::administration(conn, &administration)?;
                if only != Some(admin.id) {
                    return Err(ApiError::NotFound(format!(
                        "There is no rollout entry of `{service}` for `{administration}` that you may read."
                    )));
                }
            }
            entries::find(conn, &settings, &service, &administration)
        })
        .await?;
    Ok(ok_with_etag(&entry, entry.version))
}

/// Create a rollout entry (or change an existing one).
///
/// Members and up. Creates the entry of the service in the administration (201), `planned`
/// unless the body says otherwise; on an existing entry it changes the fields present like
/// `PATCH` (200), honouring `If-Match`. The rules of `PATCH` apply.
#[utoipa::path(
    tag = "rollout",
    params(EntryPath, IfMatchHeader),
    request_body = EntryChanges,
    responses(
        (status = 201, description = "The new entry", body = RolloutEntry,
         headers(("ETag" = String, description = "Its version"),
                 ("Location" = String, description = "The entry's URL"))),
        (status = 200, description = "The changed entry", body = RolloutEntry,
         headers(("ETag" = String, description = "Its version"))),
    )
)]
#[put("/rollout/{service}/{administration}")]
pub async fn put_entry(
    db: web::Data<Db>,
    settings: web::Data<RolloutSettings>,
    caller: CurrentUser,
    path: web::Path<(String, String)>,
    if_match: Precondition,
    body: Json<EntryChanges>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let (service, administration) = path.into_inner();
    let (entry, outcome) = db
        .transaction(move |conn| {
            let (id, outcome) = entries::write(
                conn,
                &settings,
                &service,
                &administration,
                &body.0,
                &actor,
                if_match,
                true,
            )?;
            let entry = entries::load(conn, &settings, &[id])?
                .pop()
                .ok_or_else(|| ApiError::internal("an entry vanished"))?;
            Ok((entry, outcome))
        })
        .await?;
    if outcome == Outcome::Created {
        let location = format!("/api/v1/rollout/{}/{}", entry.service, entry.administration);
        Ok(created(&entry, &location, entry.version))
    } else {
        Ok(ok_with_etag(&entry, entry.version))
    }
}

/// Change a rollout entry.
///
/// Members and up; only the fields present change; honours `If-Match`. `live` needs every
/// mandatory checklist step done (422 naming the open ones), or a manager's `override` with a
/// reason, which the history records with the open steps (a member's override is 403).
/// Becoming `live` sets `actual_go_live` (today unless given). Leaving `live` (a withdrawal)
/// needs a `reason`. `checklist` ticks (`true`) or unticks steps by key, noting who and when.
/// Every change is a history event (`entity_type` `rollout` in the changes feed).
#[utoipa::path(
    tag = "rollout",
    params(EntryPath, IfMatchHeader),
    request_body = EntryChanges,
    responses((status = 200, description = "The changed entry", body = RolloutEntry,
        headers(("ETag" = String, description = "Its new version"))))
)]
#[patch("/rollout/{service}/{administration}")]
pub async fn update_entry(
    db: web::Data<Db>,
    settings: web::Data<RolloutSettings>,
    caller: CurrentUser,
    path: web::Path<(String, String)>,
    if_match: Precondition,
    body: Json<EntryChanges>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let (service, administration) = path.into_inner();
    let entry = db
        .transaction(move |conn| {
            let (id, _) = entries::write(
                conn,
                &settings,
                &service,
                &administration,
                &body.0,
                &actor,
                if_match,
                false,
            )?;
            entries::load(conn, &settings, &[id])?
                .pop()
                .ok_or_else(|| ApiError::internal("an entry vanished"))
        })
        .await?;
    Ok(ok_with_etag(&entry, entry.version))
}

/// Plan a wave.
///
/// Members and up. Creates the `planned` entries of a service's wave for the administrations
/// named, every administration of a district, or all (`"all": true`), in one transaction;
/// administrations that have an entry already keep it unchanged (listed in `existing`).
#[utoipa::path(
    tag = "rollout",
    request_body = RolloutPlan,
    responses((status = 200, description = "What was planned", body = PlanReport))
)]
#[post("/rollout/plan")]
pub async fn plan(
    db: web::Data<Db>,
    settings: web::Data<RolloutSettings>,
    caller: CurrentUser,
    body: Json<RolloutPlan>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let report = db
        .transaction(move |conn| matrix::plan(conn, &settings, &body.0, &actor))
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// The format the caller asked for.
enum Format {
    Json,
    Csv,
    Svg,
}

fn format_of(req: &HttpRequest, asked: Option<&str>) -> Result<Format, ApiError> {
    match asked.map(str::trim) {
        Some("json") => return Ok(Format::Json),
        Some("csv") => return Ok(Format::Csv),
        Some("svg") => return Ok(Format::Svg),
        Some(_) => return Err(ApiError::bad_field("format", "must be json, csv or svg")),
        None => {}
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    Ok(if accept.contains("text/csv") {
        Format::Csv
    } else if accept.contains("image/svg+xml") {
        Format::Svg
    } else {
        Format::Json
    })
}

/// The rollout matrix.
///
/// Rows are the municipal administrations (grouped by district, the kreisfreie Städte first),
/// columns the services rolled out, cells the status with the planned go-live and whether
/// anything blocks it. `Accept: text/csv` (or `format=csv`) gives the CSV German Excel opens
/// directly (UTF-8 with BOM, `;`, CRLF; cells a spreadsheet would run as formulas are
/// neutralized); it can be edited and uploaded back (`POST /rollout/matrix`).
/// `Accept: image/svg+xml` (or `format=svg`) gives a heat map with a legend. Viewers and up; a
/// requester gets their own administration's row only.
#[utoipa::path(
    tag = "rollout",
    params(MatrixFilter),
    responses((status = 200, description = "The matrix", content(
        (Matrix = "application/json"),
        (String = "text/csv"),
        (String = "image/svg+xml"),
    )))
)]
#[get("/rollout/matrix")]
pub async fn get_matrix(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<MatrixFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let only = readable_row(&caller)?;
    let format = format_of(&req, filter.0.format.as_deref())?;
    let filter = filter.0;
    let (matrix, districts) = db
        .run(move |conn| {
            let matrix = matrix::matrix(conn, &filter, only)?;
            let districts = matrix::district_names(conn)?;
            Ok((matrix, districts))
        })
        .await?;
    Ok(match format {
        Format::Json => HttpResponse::Ok().json(matrix),
        Format::Csv => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"rollout-matrix.csv\"",
            ))
            .body(matrix::to_csv(&matrix)?),
        Format::Svg => HttpResponse::Ok()
            .content_type("image/svg+xml")
            .insert_header((
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'",
            ))
            .body(matrix::to_svg(&matrix, &districts)),
    })
}

/// Upload an edited matrix.
///
/// Members and up. Send the CSV of `GET /rollout/matrix` (`Content-Type: text/csv`; `;` or
/// `,`): every status cell that differs from what is stored changes that entry through the
/// rules of `PATCH`, each with its history event; a status where there was no entry creates
/// one. All or nothing: with any bad cell nothing is written and the 422 names every one as
/// `row N: service` (N the line of the file, the header being row 1).
#[utoipa::path(
    tag = "rollout",
    request_body(content(
        (String = "text/csv", example = "administration;name;district;wohngeld\nA-CRIVITZ;Amt Crivitz;LUP;testing\n"),
    ), description = "The matrix as CSV"),
    responses((status = 200, description = "What the upload did", body = MatrixUploadReport))
)]
#[post("/rollout/matrix")]
pub async fn upload_matrix(
    db: web::Data<Db>,
    settings: web::Data<RolloutSettings>,
    caller: CurrentUser,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !matches!(mime, "text/csv" | "application/csv") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Send text/csv, not `{}`.",
            if mime.is_empty() { "none" } else { mime }
        )));
    }
    let actor = caller.actor.clone();
    let report = db
        .transaction(move |conn| matrix::upload(conn, &settings, &body, &actor))
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Rollout progress.
///
/// Per service (default), district or wave: entries per status, `live_share` = live /
/// (all − not_applicable), overdue entries (planned go-live passed, not live), blocked
/// entries, and whether the group is live everywhere it applies; `services_live_everywhere`
/// lists the services the federal dashboard would count. Viewers and up (not requesters:
/// the figures span every administration).
#[utoipa::path(
    tag = "rollout",
    params(ProgressQuery),
    responses((status = 200, description = "The progress", body = Progress))
)]
#[get("/rollout/progress")]
pub async fn get_progress(
    db: web::Data<Db>,
    caller: CurrentUser,
    query: Query<ProgressQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let query = query.0;
    let progress = db
        .run(move |conn| {
            matrix::progress(conn, query.by.unwrap_or_default(), query.service.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(progress))
}

/// The rollout entries an item blocks.
///
/// The other end of an entry's `blocked_by`. Viewers and up.
#[utoipa::path(
    tag = "rollout",
    params(ItemKeyPath),
    responses((status = 200, description = "The entries it blocks", body = Vec<BlockedEntry>))
)]
#[get("/items/{key}/rollout")]
pub async fn item_blocks(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let list = db
        .run(move |conn| entries::blocked_by_item(conn, &key))
        .await?;
    Ok(HttpResponse::Ok().json(list))
}
