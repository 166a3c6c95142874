//! HTTP handlers for `/api/v1/boards`.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};

use crate::board::columns::ColumnChanges;
use crate::board::model::{Board, BoardChanges, BoardFilter, Column, NewBoard, NewColumn};
use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::pagination::Page;
use crate::common::version::Precondition;
use crate::web::auth::CurrentUser;
use crate::web::extract::{Json, Query};
use crate::web::params::{BoardKeyPath, ColumnIdPath};
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::PageResponse;
use crate::web::respond::{created, ok_with_etag};

/// List boards.
///
/// In id order, each with its columns. Viewer and up.
#[utoipa::path(
    tag = "boards",
    params(BoardFilter),
    responses((status = 200, description = "One page of boards", body = Page<Board>,
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/boards")]
pub async fn list_boards(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<BoardFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let filter = filter.0;
    let page = db.run(move |conn| Board::list(conn, &filter)).await?;
    Ok(page.respond(&req))
}

/// Create a board.
///
/// Managers and admins. Without `columns` the board gets the default workflow Backlog (todo) →
/// Ready (todo) → In progress (in progress, WIP 5) → Review (in progress, WIP 3) → Done (done).
#[utoipa::path(
    tag = "boards",
    request_body = NewBoard,
    responses(
        (status = 201, description = "The new board", body = Board,
         headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The key is taken", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/boards")]
pub async fn create_board(
    db: web::Data<Db>,
    caller: CurrentUser,
    body: Json<NewBoard>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let board = db
        .transaction(move |conn| Board::create(conn, &body.0, &actor))
        .await?;
    Ok(created(
        &board,
        &format!("/api/v1/boards/{}", board.key),
        board.version,
    ))
}

/// Get a board.
///
/// Addressed by its key in any case; with its columns in order. Viewer and up.
#[utoipa::path(
    tag = "boards",
    params(BoardKeyPath),
    responses((status = 200, description = "The board", body = Board, headers(("ETag" = String, description = "Its version"))))
)]
#[get("/boards/{key}")]
pub async fn get_board(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let board = db.run(move |conn| Board::find(conn, &key)).await?;
    Ok(ok_with_etag(&board, board.version))
}

/// Change a board.
///
/// Managers and admins: name and description. The key cannot change. Honours `If-Match`.
#[utoipa::path(
    tag = "boards",
    params(BoardKeyPath, IfMatchHeader),
    request_body = BoardChanges,
    responses(
        (status = 200, description = "The changed board", body = Board, headers(("ETag" = String, description = "Its new version"))),
    )
)]
#[patch("/boards/{key}")]
pub async fn update_board(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    if_match: Precondition,
    body: Json<BoardChanges>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let board = db
        .transaction(move |conn| Board::update(conn, &key, &body.0, &actor, if_match))
        .await?;
    Ok(ok_with_etag(&board, board.version))
}

/// List a board's columns.
///
/// The workflow in position order. Viewer and up.
#[utoipa::path(
    tag = "boards",
    params(BoardKeyPath),
    responses((status = 200, description = "The columns in order", body = Vec<Column>))
)]
#[get("/boards/{key}/columns")]
pub async fn list_columns(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let board = db.run(move |conn| Board::find(conn, &key)).await?;
    Ok(HttpResponse::Ok().json(board.columns))
}

/// Add a column.
///
/// Managers and admins. Inserted at `position` (the end when omitted); later columns shift.
/// Names are unique on a board regardless of case (409 otherwise).
#[utoipa::path(
    tag = "boards",
    params(BoardKeyPath),
    request_body = NewColumn,
    responses(
        (status = 201, description = "The new column", body = Column,
         headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The name is taken on this board", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/boards/{key}/columns")]
pub async fn add_column(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    body: Json<NewColumn>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let board_key = key.to_uppercase();
    let column = db
        .transaction(move |conn| Board::add_column(conn, &key, &body.0, &actor))
        .await?;
    Ok(created(
        &column,
        &format!("/api/v1/boards/{board_key}/columns/{}", column.id),
        column.version,
    ))
}

/// Change a column.
///
/// Managers and admins: rename, change the category or the WIP limit (`null` removes it), or
/// move it to another `position`. Honours `If-Match`.
#[utoipa::path(
    tag = "boards",
    params(BoardKeyPath, ColumnIdPath, IfMatchHeader),
    request_body = ColumnChanges,
    responses(
        (status = 200, description = "The changed column", body = Column, headers(("ETag" = String, description = "Its new version"))),
        (status = 409, description = "The name is taken on this board", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/boards/{key}/columns/{id}")]
pub async fn update_column(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, i64)>,
    if_match: Precondition,
    body: Json<ColumnChanges>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let (key, id) = path.into_inner();
    let column = db
        .transaction(move |conn| Board::update_column(conn, &key, id, &body.0, &actor, if_match))
        .await?;
    Ok(ok_with_etag(&column, column.version))
}

/// Delete a column.
///
/// Managers and admins; only an empty column, and never a board's last one (409).
#[utoipa::path(
    tag = "boards",
    params(BoardKeyPath, ColumnIdPath, IfMatchHeader),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The column holds items, or is the board's last", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/boards/{key}/columns/{id}")]
pub async fn delete_column(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, i64)>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let (key, id) = path.into_inner();
    db.transaction(move |conn| Board::delete_column(conn, &key, id, &actor, if_match))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
