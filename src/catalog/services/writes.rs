//! Writing services: the upsert shared by the form and the import, the PATCH merge and the
//! guarded delete, each recording its event in the history.

use diesel::prelude::*;
use serde_json::{Value, json};

use super::queries::loaded_rows_to_api;
use super::{
    OrganizationIndex, ResolvedService, Service, ServiceChanges, ServiceInput, ServiceRow,
    UpsertOutcome,
};
use crate::common::actor::Actor;
use crate::common::db::schema::{service_leika_keys, service_tags, services};
use crate::common::db::{DbConnection, now};
use crate::common::error::ApiError;
use crate::common::history::{self, Diff, Subject};
use crate::common::version::Precondition;

/// The columns of `services` that a [`ResolvedService`] sets, for the insert and the update
/// alike. A macro because the tuple's type is a mouthful that nobody should have to spell.
macro_rules! stored_fields {
    ($service:expr) => {
        (
            services::name.eq(&$service.name),
            services::description.eq(&$service.description),
            services::lifecycle.eq($service.lifecycle.as_str()),
            services::kind.eq($service.kind.as_str()),
            services::maturity_level.eq($service.maturity_level),
            services::ozg_id.eq(&$service.ozg_id),
            services::topic.eq(&$service.topic),
            services::operator_id.eq($service.operator_id),
            services::responsible_id.eq($service.responsible_id),
            services::url.eq(&$service.url),
            services::go_live_date.eq($service.go_live_date),
        )
    };
}

impl Service {
    /// Creates the service, or updates it when the key exists; unchanged input writes nothing.
    /// Runs in the caller's transaction; writes one event when something changed.
    pub fn upsert(
        conn: &mut DbConnection,
        service: &ResolvedService,
        orgs: &OrganizationIndex,
        actor: &Actor,
        create_only: bool,
    ) -> Result<(UpsertOutcome, i64), ApiError> {
        let existing = match Service::row_for_update(conn, &service.key) {
            Ok(row) => Some(row),
            Err(ApiError::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        let stamp = now();
        match existing {
            Some(_) if create_only => Err(ApiError::Conflict(format!(
                "A service with the key `{}` exists already.",
                service.key
            ))),
            None => {
                let id: i64 = diesel::insert_into(services::table)
                    .values((
                        services::key.eq(&service.key),
                        stored_fields!(service),
                        services::created_at.eq(stamp),
                        services::updated_at.eq(stamp),
                        services::version.eq(1_i64),
                        services::raci_version.eq(1_i64),
                    ))
                    .returning(services::id)
                    .get_result(conn)?;
                write_lists(conn, id, service)?;
                let mut data = service.as_json(orgs);
                data["key"] = json!(service.key);
                history::record(
                    conn,
                    Subject {
                        entity_type: "service",
                        entity_id: id,
                    },
                    "created",
                    actor,
                    data,
                )?;
                Ok((UpsertOutcome::Created, id))
            }
            Some(row) => {
                let current = loaded_rows_to_api(conn, vec![row.clone()])?
                    .pop()
                    .ok_or_else(|| ApiError::internal("service vanished"))?;
                let before = current_as_resolved(&current, &row);
                if before == *service {
                    return Ok((UpsertOutcome::Unchanged, row.id));
                }
                let (old, new) = (before.as_json(orgs), service.as_json(orgs));
                let mut changed = Diff::new();
                changed.fields_of(None, &old, &new);
                crate::versioned_write!(
                    conn,
                    services,
                    row.id,
                    row.version,
                    stored_fields!(service),
                )?;
                if before.leika_keys != service.leika_keys || before.tags != service.tags {
                    diesel::delete(
                        service_leika_keys::table.filter(service_leika_keys::service_id.eq(row.id)),
                    )
                    .execute(conn)?;
                    diesel::delete(service_tags::table.filter(service_tags::service_id.eq(row.id)))
                        .execute(conn)?;
                    write_lists(conn, row.id, service)?;
                }
                history::record(
                    conn,
                    Subject {
                        entity_type: "service",
                        entity_id: row.id,
                    },
                    "updated",
                    actor,
                    changed.into_data(),
                )?;
                Ok((UpsertOutcome::Updated, row.id))
            }
        }
    }

    /// Applies a PATCH: merges the changes into the stored service, validates the result as a
    /// whole and writes it, honouring `If-Match`.
    pub fn update(
        conn: &mut DbConnection,
        key: &str,
        changes: &ServiceChanges,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<Service, ApiError> {
        let row = Service::row_for_update(conn, key)?;
        expected.check(row.version)?;
        let current = Service::find(conn, key)?;
        let input = ServiceInput {
            key: current.key.clone(),
            name: changes.name.clone().unwrap_or(current.name),
            description: changes.description.clone().unwrap_or(current.description),
            lifecycle: changes.lifecycle.unwrap_or(current.lifecycle),
            kind: Some(changes.kind.unwrap_or(current.kind)),
            maturity_level: changes.maturity_level.unwrap_or(current.maturity_level),
            ozg_id: changes.ozg_id.clone().unwrap_or(current.ozg_id),
            leika_keys: changes.leika_keys.clone().unwrap_or(current.leika_keys),
            topic: changes.topic.clone().unwrap_or(current.topic),
            operator: changes.operator.clone().unwrap_or(current.operator),
            responsible: changes.responsible.clone().unwrap_or(current.responsible),
            url: changes.url.clone().unwrap_or(current.url),
            go_live_date: changes.go_live_date.unwrap_or(current.go_live_date),
            tags: changes.tags.clone().unwrap_or(current.tags),
        };
        let orgs = OrganizationIndex::load(conn)?;
        let resolved = input.validate(&orgs).map_err(ApiError::Validation)?;
        Service::upsert(conn, &resolved, &orgs, actor, false)?;
        Service::find(conn, key)
    }

    /// Deletes a service with its RACI template. Refused with 409 naming what still refers to
    /// it: items (deleted ones included, whose history refers to it), incidents that list it
    /// as affected, SLA policies for it. Retire a service instead of deleting it.
    pub fn delete(
        conn: &mut DbConnection,
        key: &str,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<(), ApiError> {
        use crate::common::db::schema::{incident_services, items, sla_policies};
        let row = Service::row_for_update(conn, key)?;
        expected.check(row.version)?;
        let referring: i64 = items::table
            .filter(items::service_id.eq(row.id))
            .count()
            .get_result(conn)?;
        // An incident's own service is among its affected ones; count only the others here.
        let affected: i64 = incident_services::table
            .inner_join(items::table)
            .filter(incident_services::service_id.eq(row.id))
            .filter(items::service_id.ne(row.id).or(items::service_id.is_null()))
            .count()
            .get_result(conn)?;
        let policies: i64 = sla_policies::table
            .filter(sla_policies::service_id.eq(row.id))
            .count()
            .get_result(conn)?;
        let rollout: i64 = crate::common::db::schema::rollout_waves::table
            .filter(crate::common::db::schema::rollout_waves::service_id.eq(row.id))
            .count()
            .get_result::<i64>(conn)?
            + crate::common::db::schema::rollout_entries::table
                .filter(crate::common::db::schema::rollout_entries::service_id.eq(row.id))
                .count()
                .get_result::<i64>(conn)?;
        ApiError::unless_unreferenced(
            &format!("`{key}`"),
            &[
                (referring, "item(s) (deleted ones included)"),
                (affected, "incident(s) as an affected service"),
                (policies, "SLA policy(ies)"),
                (rollout, "rollout wave(s) and entry(ies)"),
            ],
            "retire it (lifecycle: retired) instead of deleting it, or delete its SLA policies first.",
        )?;
        crate::versioned_delete!(conn, services, row.id, row.version)?;
        history::record(
            conn,
            Subject {
                entity_type: "service",
                entity_id: row.id,
            },
            "deleted",
            actor,
            json!({"key": key}),
        )
    }
}

impl ResolvedService {
    fn as_json(&self, orgs: &OrganizationIndex) -> Value {
        json!({
            "name": self.name, "description": self.description,
            "lifecycle": self.lifecycle.as_str(), "kind": self.kind.as_str(),
            "maturity_level": self.maturity_level, "ozg_id": self.ozg_id,
            "leika_keys": self.leika_keys, "topic": self.topic,
            "operator": orgs.short_name(self.operator_id),
            "responsible": orgs.short_name(self.responsible_id),
            "url": self.url, "go_live_date": self.go_live_date, "tags": self.tags,
        })
    }
}

fn current_as_resolved(current: &Service, row: &ServiceRow) -> ResolvedService {
    ResolvedService {
        key: current.key.clone(),
        name: current.name.clone(),
        description: current.description.clone(),
        lifecycle: current.lifecycle,
        kind: current.kind,
        maturity_level: current.maturity_level,
        ozg_id: current.ozg_id.clone(),
        leika_keys: current.leika_keys.clone(),
        topic: current.topic.clone(),
        operator_id: row.operator_id,
        responsible_id: row.responsible_id,
        url: current.url.clone(),
        go_live_date: current.go_live_date,
        tags: current.tags.clone(),
    }
}

/// Writes the LeiKa keys and tags of a service, row by row (multi-row inserts do not cross the
/// two engines).
fn write_lists(
    conn: &mut DbConnection,
    id: i64,
    service: &ResolvedService,
) -> Result<(), ApiError> {
    for (position, key) in service.leika_keys.iter().enumerate() {
        diesel::insert_into(service_leika_keys::table)
            .values((
                service_leika_keys::service_id.eq(id),
                service_leika_keys::leika_key.eq(key),
                service_leika_keys::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
            ))
            .execute(conn)?;
    }
    for tag in &service.tags {
        diesel::insert_into(service_tags::table)
            .values((service_tags::service_id.eq(id), service_tags::tag.eq(tag)))
            .execute(conn)?;
    }
    Ok(())
}
