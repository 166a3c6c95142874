//! A person as other records show them: in RACI lists of services and items, as accountable
//! people and as the hand-over's replacement.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::db::schema::users;

/// A person as shown in RACI lists.
// Loaded from [`PERSON_COLUMNS`] (a plain comment: the doc comment is the spec's description).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, diesel::Queryable)]
pub struct PersonRef {
    /// The user's id.
    pub id: i64,
    /// Their display name.
    pub display_name: String,
    /// Their e-mail.
    pub email: String,
    /// Whether they may log in.
    pub active: bool,
}

/// The columns of `users` a [`PersonRef`] is loaded from, in the order of its fields: select
/// them where a query shows people (joined to `users`), and load that part of each row as a
/// `PersonRef`.
pub const PERSON_COLUMNS: (users::id, users::display_name, users::email, users::active) =
    (users::id, users::display_name, users::email, users::active);

/// A person named in a request body: a user id, or an e-mail address (any case), so that a
/// sync script can map the people of another system by e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PersonId {
    /// The user's id.
    Id(i64),
    /// The user's login e-mail, any case.
    Email(String),
}

// Written by hand because the derive cannot put `format: email` on a variant's string: the
// spec says `oneOf: [integer, string (email)]`.
impl utoipa::PartialSchema for PersonId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .description(Some("The user's id.")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                    .max_length(Some(254))
                    .description(Some("The user's login e-mail, any case.")),
            )
            .description(Some(
                "A person: a user id, or an e-mail address (any case), so that a sync script can \
                 map the people of another system by e-mail.",
            ))
            .examples(Some(serde_json::json!("anna.berg@example.org")))
            .into()
    }
}

impl ToSchema for PersonId {}

impl PersonId {
    /// What a request says when this person is nobody.
    pub fn unknown(&self) -> String {
        match self {
            PersonId::Id(id) => format!("user {id} does not exist"),
            PersonId::Email(email) => format!("there is no user with the e-mail {email}"),
        }
    }

    /// The users these name, as `(id, active)`, in two queries at most (ids, e-mails); a
    /// person who is nobody is missing from the map.
    pub fn lookup(
        conn: &mut crate::common::db::DbConnection,
        people: &[&PersonId],
    ) -> Result<std::collections::HashMap<PersonId, (i64, bool)>, crate::common::error::ApiError>
    {
        use crate::common::db::schema::users;
        use diesel::prelude::*;
        let ids: Vec<i64> = people
            .iter()
            .filter_map(|p| match p {
                PersonId::Id(id) => Some(*id),
                PersonId::Email(_) => None,
            })
            .collect();
        let emails: Vec<String> = people
            .iter()
            .filter_map(|p| match p {
                PersonId::Email(email) => Some(email.trim().to_lowercase()),
                PersonId::Id(_) => None,
            })
            .collect();
        let mut found = std::collections::HashMap::new();
        if !ids.is_empty() {
            for (id, active) in users::table
                .filter(users::id.eq_any(&ids))
                .select((users::id, users::active))
                .load::<(i64, bool)>(conn)?
            {
                found.insert(PersonId::Id(id), (id, active));
            }
        }
        if !emails.is_empty() {
            let by_email: std::collections::HashMap<String, (i64, bool)> = users::table
                .filter(crate::common::db::lower(users::email).eq_any(&emails))
                .select((users::email, users::id, users::active))
                .load::<(String, i64, bool)>(conn)?
                .into_iter()
                .map(|(email, id, active)| (email.to_lowercase(), (id, active)))
                .collect();
            for person in people {
                if let PersonId::Email(email) = person
                    && let Some(user) = by_email.get(&email.trim().to_lowercase())
                {
                    found.insert((*person).clone(), *user);
                }
            }
        }
        Ok(found)
    }

    /// The user id this names, or a 422 field error naming `field`: an unknown e-mail or id,
    /// or (with `active_only`) a deactivated user.
    pub fn resolve(
        &self,
        conn: &mut crate::common::db::DbConnection,
        field: &str,
        active_only: bool,
    ) -> Result<Result<i64, crate::common::error::FieldError>, crate::common::error::ApiError> {
        use crate::common::db::schema::users;
        use crate::common::error::FieldError;
        use diesel::prelude::*;
        let found: Option<(i64, bool)> = match self {
            PersonId::Id(id) => users::table
                .find(id)
                .select((users::id, users::active))
                .first(conn)
                .optional()?,
            PersonId::Email(email) => users::table
                .filter(crate::common::db::lower(users::email).eq(email.trim().to_lowercase()))
                .select((users::id, users::active))
                .first(conn)
                .optional()?,
        };
        Ok(match found {
            None => Err(FieldError::new(
                field,
                match self {
                    PersonId::Id(id) => format!("there is no user {id}"),
                    PersonId::Email(email) => format!("there is no user with the e-mail {email}"),
                },
            )),
            Some((_, false)) if active_only => Err(FieldError::new(field, "is a deactivated user")),
            Some((id, _)) => Ok(id),
        })
    }
}
