//! How the database's errors become [`ApiError`]s: diesel's `NotFound` a 404, a broken unique
//! key a 409 naming the field it guards ([`UNIQUE_FIELDS`]), a broken foreign key a 409, a broken
//! check constraint a 422, a lock or serialization failure a retryable [`ApiError::Busy`], an
//! unreachable pool a 503; the database's own text and constraint names go to the log only.

use super::ApiError;

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => ApiError::NotFound("The resource does not exist.".into()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                log::info!("unique violation: {}", info.message());
                ApiError::Taken {
                    field: unique_field(info.as_ref()),
                }
            }
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                log::info!("foreign key violation: {}", info.message());
                ApiError::Conflict(
                    "The change conflicts with a reference between records, perhaps one made or \
                     removed at the same moment: something still refers to what is removed, or \
                     what is referred to no longer exists. Reload and try again."
                        .into(),
                )
            }
            Error::DatabaseError(DatabaseErrorKind::CheckViolation, info) => {
                log::info!("check violation: {}", info.message());
                ApiError::CheckViolation
            }
            // SQLite reports a CHECK failure raised by a trigger (and one of its own where the
            // extended result code is lost) as a plain constraint error with this message.
            Error::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().starts_with("CHECK constraint failed") =>
            {
                log::info!("check violation: {}", info.message());
                ApiError::CheckViolation
            }
            // The connection is dead (the server restarted, the network dropped): the pool
            // discards it when it comes back, and the client may retry.
            Error::DatabaseError(
                kind @ (DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand),
                info,
            ) => {
                crate::common::db::lost::note();
                ApiError::Unavailable(format!("{kind:?}: {}", info.message()))
            }
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                ApiError::Busy(info.message().to_string())
            }
            // SQLite's lock wait ran out; PostgreSQL broke a deadlock by aborting this side.
            // Both are retried by Db::transaction like a serialization failure.
            Error::DatabaseError(_, info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy")
                    || info.message().contains("deadlock detected") =>
            {
                ApiError::Busy(info.message().to_string())
            }
            other => ApiError::internal_error(&other),
        }
    }
}

/// The unique constraints a request can run into, as `(name in PostgreSQL, target in SQLite's
/// message, field)`. PostgreSQL reports the constraint's name; SQLite only its message, which
/// names the columns (`services.key`) or, for an index on an expression, the index. Keep in
/// step with the migrations; an unknown constraint is still a 409, without a field.
pub const UNIQUE_FIELDS: &[(&str, &str, &str)] = &[
    ("users_email_key", "users.email", "email"),
    (
        "organizations_short_name_key",
        "index 'organizations_short_name_key'",
        "short_name",
    ),
    ("services_key_key", "services.key", "key"),
    ("boards_key_key", "boards.key", "key"),
    (
        "board_columns_name_key",
        "index 'board_columns_name_key'",
        "name",
    ),
    (
        "item_external_refs_system_ext_key_key",
        "item_external_refs.system, item_external_refs.ext_key",
        "external_refs",
    ),
    (
        "item_external_refs_pkey",
        "item_external_refs.item_id, item_external_refs.system",
        "external_refs",
    ),
    (
        "item_links_source_id_target_id_kind_key",
        "item_links.source_id, item_links.target_id, item_links.kind",
        "item",
    ),
    (
        "item_raci_one_accountable",
        "item_raci.item_id",
        "accountable",
    ),
    (
        "service_raci_one_accountable",
        "service_raci.service_id",
        "accountable",
    ),
    (
        "sla_policies_default_idx",
        "sla_policies.severity",
        "severity",
    ),
    (
        "sla_policies_service_idx",
        "sla_policies.severity, sla_policies.service_id",
        "severity",
    ),
];

/// The field a broken unique constraint guards, if it is one of [`UNIQUE_FIELDS`].
fn unique_field(info: &dyn diesel::result::DatabaseErrorInformation) -> Option<&'static str> {
    let sqlite_target = info
        .message()
        .strip_prefix("UNIQUE constraint failed: ")
        .map(str::trim);
    UNIQUE_FIELDS
        .iter()
        .find(|(name, target, _)| {
            info.constraint_name() == Some(*name) || sqlite_target == Some(*target)
        })
        .map(|(_, _, field)| *field)
}

impl From<r2d2::Error> for ApiError {
    fn from(error: r2d2::Error) -> Self {
        ApiError::Unavailable(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::error::{FieldError, Problem};
    use actix_web::ResponseError;
    use actix_web::body::MessageBody;
    use actix_web::http::StatusCode;

    /// A database error as diesel reports it, for the mapping tests.
    struct Info {
        message: &'static str,
        constraint: Option<&'static str>,
    }

    impl diesel::result::DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.constraint
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn database_error(
        kind: diesel::result::DatabaseErrorKind,
        message: &'static str,
        constraint: Option<&'static str>,
    ) -> (StatusCode, String) {
        let error = ApiError::from(diesel::result::Error::DatabaseError(
            kind,
            Box::new(Info {
                message,
                constraint,
            }),
        ));
        let response = error.error_response();
        let body = response.into_body().try_into_bytes().unwrap_or_default();
        (
            error.status_code(),
            String::from_utf8_lossy(&body).to_string(),
        )
    }

    #[test]
    fn unique_violations_name_the_field_and_leak_no_constraint() {
        use diesel::result::DatabaseErrorKind::UniqueViolation;
        let cases = [
            (
                "duplicate key value violates unique constraint \"services_key_key\"",
                Some("services_key_key"),
                Some("key"),
            ),
            ("UNIQUE constraint failed: services.key", None, Some("key")),
            (
                "UNIQUE constraint failed: index 'organizations_short_name_key'",
                None,
                Some("short_name"),
            ),
            (
                "duplicate key value violates unique constraint \"users_email_key\"",
                Some("users_email_key"),
                Some("email"),
            ),
            (
                "UNIQUE constraint failed: sla_policies.severity, sla_policies.service_id",
                None,
                Some("severity"),
            ),
            (
                "duplicate key value violates unique constraint \"items_key_key\"",
                Some("items_key_key"),
                None,
            ),
        ];
        for (message, constraint, field) in cases {
            let (status, body) = database_error(UniqueViolation, message, constraint);
            assert_eq!(status, StatusCode::CONFLICT, "{message}");
            for leak in [
                "constraint",
                "duplicate",
                "UNIQUE",
                "_key",
                "services.",
                "index",
            ] {
                assert!(!body.contains(leak), "{message} leaks `{leak}`: {body}");
            }
            let problem: Problem = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
            match field {
                Some(field) => {
                    assert_eq!(
                        problem.errors,
                        vec![FieldError::new(field, "is already taken")]
                    );
                    assert!(problem.detail.contains(&format!("`{field}`")), "{body}");
                }
                None => assert!(problem.errors.is_empty(), "{body}"),
            }
        }
    }

    #[test]
    fn a_foreign_key_violation_is_a_conflict_without_names() {
        use diesel::result::DatabaseErrorKind::ForeignKeyViolation;
        for (message, constraint) in [
            (
                "update or delete on table \"organizations\" violates foreign key constraint \
                 \"demand_details_requesting_org_id_fkey\" on table \"demand_details\"",
                Some("demand_details_requesting_org_id_fkey"),
            ),
            ("FOREIGN KEY constraint failed", None),
        ] {
            let (status, body) = database_error(ForeignKeyViolation, message, constraint);
            assert_eq!(status, StatusCode::CONFLICT);
            for leak in ["fkey", "demand_details", "organizations", "FOREIGN KEY"] {
                assert!(!body.contains(leak), "leaks `{leak}`: {body}");
            }
        }
    }

    #[test]
    fn a_check_violation_is_a_422_without_names_on_both_engines() {
        use diesel::result::DatabaseErrorKind::{CheckViolation, Unknown};
        for (kind, message, constraint) in [
            (
                CheckViolation,
                "new row for relation \"board_columns\" violates check constraint \
                 \"board_columns_wip_limit_check\"",
                Some("board_columns_wip_limit_check"),
            ),
            (
                CheckViolation,
                "CHECK constraint failed: wip_limit IS NULL OR wip_limit > 0",
                None,
            ),
            (
                Unknown,
                "CHECK constraint failed: board_columns_wip_limit_check",
                None,
            ),
        ] {
            let (status, body) = database_error(kind, message, constraint);
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{message}: {body}"
            );
            for leak in ["check", "CHECK", "board_columns", "wip_limit", "relation"] {
                assert!(!body.contains(leak), "{message} leaks `{leak}`: {body}");
            }
            let problem: Problem = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(problem.status, 422);
        }
        // Any other unknown database error stays a 500.
        let (status, _) = database_error(Unknown, "disk I/O error", None);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_unique_violation_is_a_conflict_and_not_found_is_404() {
        assert_eq!(
            ApiError::from(diesel::result::Error::NotFound).status_code(),
            StatusCode::NOT_FOUND
        );
        let stale = ApiError::PreconditionFailed { current_version: 7 }.problem();
        assert_eq!(stale.status, 412);
        assert_eq!(stale.current_version, Some(7));
    }
}
