//! The path parameters that many handlers share, as [`IntoParams`] types, so their OpenAPI
//! description is written once: a handler names them in `#[utoipa::path(params(...))]` and
//! keeps extracting the value with `web::Path` as before. They are documentation only; the
//! features' models never see them.

use utoipa::IntoParams;

/// `{key}` of `/services/{key}/…`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ServiceKeyPath {
    /// The service's key
    pub key: String,
}

/// `{short_name}` of `/organizations/{short_name}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrganizationPath {
    /// The organization's short name, any case
    pub short_name: String,
}

/// `{key}` of `/boards/{key}/…`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BoardKeyPath {
    /// The board's key, such as OPS
    pub key: String,
}

/// `{id}` of `/boards/{key}/columns/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ColumnIdPath {
    /// The column's id
    pub id: i64,
}

/// `{key}` of `/items/{key}/…`: an item's key such as `OPS-12`, or its numeric id.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ItemKeyPath {
    /// The item's key or numeric id
    pub key: String,
}

/// `{id}` of `/items/{key}/comments/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CommentIdPath {
    /// The comment's id
    pub id: i64,
}

/// `{id}` of `/users/{id}/…`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserIdPath {
    /// The user's id
    pub id: i64,
}

/// `{id}` of `/sla-policies/{id}/…`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SlaPolicyIdPath {
    /// The policy's id
    pub id: i64,
}
