//! `POST /api/v1/imports/jira`: the JIRA import over HTTP, for tokens with the `import` scope.

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::web::auth::CurrentUser;
use crate::workflows::jira::import::{self, ImportReport};

/// The largest import body read, in bytes: a JIRA export of some thousands of issues with
/// their changelogs and comments.
pub const MAX_IMPORT_BYTES: usize = 64 << 20;

/// The body of `POST /api/v1/imports/jira`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "mapping": "board = \"OPS\"\n[status_categories]\nnew = \"Backlog\"\nindeterminate = \"In Arbeit\"\ndone = \"Erledigt\"\n[types]\nTask = \"task\"\nBug = \"incident\"\n[services]\ndefault = \"wohngeld\"\n[people]\ndefault = \"sabine.luedtke@example.org\"\n",
    "issues": {"issues": [{"id": "10042", "key": "OZG-123", "fields": {"summary": "Upload bricht ab",
        "issuetype": {"name": "Bug"}, "status": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}},
        "priority": {"name": "High"}, "created": "2026-02-02T09:00:00.000+0100", "updated": "2026-02-03T10:15:00.000+0100"},
        "changelog": {"histories": []}}]},
    "dry_run": true
}))]
pub struct JiraImport {
    /// The mapping file's text (TOML; see `docs/jira-mapping.sample.toml`).
    pub mapping: String,
    /// The export: a search response `{"issues": [...]}` (with `expand=changelog`), an array of
    /// issues, or an array of search responses (pages).
    #[schema(value_type = Object)]
    pub issues: serde_json::Value,
    /// Only report what the import would do, and every value the mapping leaves unmapped.
    #[serde(default)]
    pub dry_run: bool,
}

/// Import issues from JIRA.
///
/// Issues as JIRA's REST API returns them with `expand=changelog` (Cloud v3 or Data Center v2)
/// become items of the mapping's board, each through the upsert by reference (`system` `jira`,
/// `key` the issue id, `alias` the issue key), so that importing again updates instead of
/// duplicating and an unchanged issue changes nothing. Items keep JIRA's creation time and
/// reporter; the changelog's status changes become `moved` events at their own times and by
/// their authors (so `started_at`, `done_at` and flow figures describe what happened in JIRA);
/// comments keep their times and authors; links and parents become links where both ends are
/// imported. All or nothing. With `dry_run` nothing is written: the report gives the counts
/// and every status, type, priority, component and person the mapping leaves unmapped; a real
/// run with anything unmapped and no fallback is a 422 listing them. Managers and admins; an
/// API token needs the scope `import`. The command line does the same:
/// `opsboard import jira FILE --mapping MAPPING.toml [--dry-run]`.
#[utoipa::path(
    tag = "imports",
    request_body = JiraImport,
    responses((status = 200, description = "What the import did (or would do)", body = ImportReport))
)]
#[post("/imports/jira")]
pub async fn import_jira(
    db: web::Data<Db>,
    caller: CurrentUser,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let body = crate::web::extract::read_body(&mut payload, MAX_IMPORT_BYTES).await?;
    let request: JiraImport = crate::common::parse::parse_json(&body)?;
    let export = serde_json::to_vec(&flatten_pages(request.issues))
        .map_err(|e| ApiError::internal(format!("the export as JSON: {e}")))?;
    let (mapping, actor) = (request.mapping, caller.actor.clone());
    let report = if request.dry_run {
        db.run(move |conn| import::dry_run(conn, &export, &mapping))
            .await?
    } else {
        db.transaction(move |conn| import::run(conn, &export, &mapping, &actor, &mut |_, _| {}))
            .await?
    };
    Ok(HttpResponse::Ok().json(report))
}

/// An array of search responses as one list of issues.
fn flatten_pages(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Array(list)
            if list
                .iter()
                .any(|v| v.get("issues").is_some_and(|i| i.is_array())) =>
        {
            serde_json::Value::Array(
                list.into_iter()
                    .flat_map(|page| match page.get("issues") {
                        Some(serde_json::Value::Array(issues)) => issues.clone(),
                        _ => vec![page],
                    })
                    .collect(),
            )
        }
        other => other,
    }
}
