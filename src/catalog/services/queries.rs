//! Reading services: one by key (locked for a write or not) and the filtered, sorted list. A
//! list loads in five queries whatever the page size: the page, its LeiKa keys, its tags, its
//! accountable people and its organizations.

use std::collections::HashMap;

use diesel::prelude::*;

use super::{Lifecycle, Service, ServiceFilter, ServiceKind, ServiceRow, ServiceSort};
use crate::common::db::schema::{
    organizations, service_leika_keys, service_raci, service_tags, services, users,
};
use crate::common::db::{DbConnection, lower};
use crate::common::error::{ApiError, FieldError};
use crate::common::pagination::{
    Page, PageParams, SortCursor, encode_cursor, format_cursor_time, parse_cursor_time,
};
use crate::common::person::{PERSON_COLUMNS, PersonRef};

/// The API shape of stored rows, with their lists, accountable people and organizations
/// loaded in four queries.
pub(super) fn loaded_rows_to_api(
    conn: &mut DbConnection,
    rows: Vec<ServiceRow>,
) -> Result<Vec<Service>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut leika: HashMap<i64, Vec<String>> = HashMap::new();
    for (service_id, key) in service_leika_keys::table
        .filter(service_leika_keys::service_id.eq_any(&ids))
        .order((service_leika_keys::service_id, service_leika_keys::position))
        .select((
            service_leika_keys::service_id,
            service_leika_keys::leika_key,
        ))
        .load::<(i64, String)>(conn)?
    {
        leika.entry(service_id).or_default().push(key);
    }
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for (service_id, tag) in service_tags::table
        .filter(service_tags::service_id.eq_any(&ids))
        .order((service_tags::service_id, service_tags::tag))
        .select((service_tags::service_id, service_tags::tag))
        .load::<(i64, String)>(conn)?
    {
        tags.entry(service_id).or_default().push(tag);
    }
    let org_ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| [r.operator_id, r.responsible_id])
        .flatten()
        .collect();
    let mut accountable: HashMap<i64, PersonRef> = service_raci::table
        .inner_join(users::table)
        .filter(
            service_raci::service_id
                .eq_any(&ids)
                .and(service_raci::role.eq("accountable")),
        )
        .select((service_raci::service_id, PERSON_COLUMNS))
        .load::<(i64, PersonRef)>(conn)?
        .into_iter()
        .collect();
    let orgs: HashMap<i64, String> = organizations::table
        .filter(organizations::id.eq_any(&org_ids))
        .select((organizations::id, organizations::short_name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    rows.into_iter()
        .map(|row| {
            let lifecycle = Lifecycle::parse(&row.lifecycle).ok_or_else(|| {
                ApiError::internal(format!("unknown lifecycle {}", row.lifecycle))
            })?;
            let kind = ServiceKind::parse(&row.kind)
                .ok_or_else(|| ApiError::internal(format!("unknown kind {}", row.kind)))?;
            Ok(Service {
                leika_keys: leika.remove(&row.id).unwrap_or_default(),
                tags: tags.remove(&row.id).unwrap_or_default(),
                accountable: accountable.remove(&row.id),
                operator: row.operator_id.and_then(|id| orgs.get(&id).cloned()),
                responsible: row.responsible_id.and_then(|id| orgs.get(&id).cloned()),
                id: row.id,
                key: row.key,
                name: row.name,
                description: row.description,
                lifecycle,
                kind,
                maturity_level: row.maturity_level,
                ozg_id: row.ozg_id,
                topic: row.topic,
                url: row.url,
                go_live_date: row.go_live_date,
                created_at: row.created_at.and_utc(),
                updated_at: row.updated_at.and_utc(),
                version: row.version,
            })
        })
        .collect()
}

impl Service {
    /// The stored row of a service by key, or 404.
    pub(crate) fn row(conn: &mut DbConnection, key: &str) -> Result<ServiceRow, ApiError> {
        services::table
            .filter(services::key.eq(key))
            .select(ServiceRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::NotFound(format!("There is no service `{key}`.")))
    }

    /// The stored row of a service by key, locked until the end of the transaction (see
    /// [`crate::common::db::lock`]): where every write of a service starts.
    pub(crate) fn row_for_update(
        conn: &mut DbConnection,
        key: &str,
    ) -> Result<ServiceRow, ApiError> {
        let row = Service::row(conn, key)?;
        if crate::common::db::lock(conn, crate::common::db::Lock::Service(row.id))? {
            return Service::row(conn, key);
        }
        Ok(row)
    }

    /// The id of the service `key` that request field `field` names; when there is none, an
    /// error for that field joins `errors` (so that one 422 names every bad field).
    pub fn id_for_field(
        conn: &mut DbConnection,
        key: &str,
        field: impl Into<String>,
        errors: &mut Vec<FieldError>,
    ) -> Result<Option<i64>, ApiError> {
        let id = services::table
            .filter(services::key.eq(key))
            .select(services::id)
            .first::<i64>(conn)
            .optional()?;
        if id.is_none() {
            errors.push(FieldError::new(
                field,
                format!("there is no service `{key}`"),
            ));
        }
        Ok(id)
    }

    /// The service with this key.
    pub fn find(conn: &mut DbConnection, key: &str) -> Result<Service, ApiError> {
        let row = Service::row(conn, key)?;
        loaded_rows_to_api(conn, vec![row])?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("There is no service `{key}`.")))
    }

    /// One page of services, filtered and sorted, in five queries.
    pub fn list(
        conn: &mut DbConnection,
        filter: &ServiceFilter,
    ) -> Result<Page<Service>, ApiError> {
        let paging = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = paging.limit()?;
        let sort = filter.sort.unwrap_or_default();
        let after = paging.after_sorted(sort)?;
        let mut query = services::table.select(ServiceRow::as_select()).into_boxed();
        if let Some(lifecycle) = filter.lifecycle {
            query = query.filter(services::lifecycle.eq(lifecycle.as_str()));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(services::kind.eq(kind.as_str()));
        }
        if let Some(operator) = &filter.operator {
            let ids = organizations::table
                .filter(lower(organizations::short_name).eq(operator.trim().to_lowercase()))
                .select(organizations::id.nullable());
            query = query.filter(services::operator_id.eq_any(ids));
        }
        if let Some(responsible) = &filter.responsible {
            let ids = organizations::table
                .filter(lower(organizations::short_name).eq(responsible.trim().to_lowercase()))
                .select(organizations::id.nullable());
            query = query.filter(services::responsible_id.eq_any(ids));
        }
        if let Some(tag) = &filter.tag {
            let ids = service_tags::table
                .filter(service_tags::tag.eq(tag.trim().to_lowercase()))
                .select(service_tags::service_id);
            query = query.filter(services::id.eq_any(ids));
        }
        if let Some(since) = filter.updated_since {
            query = query.filter(services::updated_at.ge(since.0.naive_utc()));
        }
        if let Some(pattern) = crate::common::text::search_pattern(filter.q.as_deref())? {
            let by_leika = service_leika_keys::table
                .filter(
                    service_leika_keys::leika_key
                        .like(pattern.clone())
                        .escape('\\'),
                )
                .select(service_leika_keys::service_id);
            query = query.filter(
                services::key
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(services::name).like(pattern).escape('\\'))
                    .or(services::id.eq_any(by_leika)),
            );
        }
        let bad_cursor = || ApiError::bad_field("cursor", "is not a cursor returned by this list");
        query = match sort {
            ServiceSort::Key | ServiceSort::KeyDesc => {
                let after = after.map(|c| (c.v, c.id));
                crate::keyset_order!(
                    query,
                    services::key,
                    services::id,
                    sort == ServiceSort::KeyDesc,
                    after
                )
            }
            ServiceSort::Name | ServiceSort::NameDesc => {
                let after = after.map(|c| (c.v, c.id));
                crate::keyset_order!(
                    query,
                    services::name,
                    services::id,
                    sort == ServiceSort::NameDesc,
                    after
                )
            }
            ServiceSort::UpdatedAt | ServiceSort::UpdatedAtDesc => {
                let after = match after {
                    Some(c) => Some((parse_cursor_time(&c.v).ok_or_else(bad_cursor)?, c.id)),
                    None => None,
                };
                crate::keyset_order!(
                    query,
                    services::updated_at,
                    services::id,
                    sort == ServiceSort::UpdatedAtDesc,
                    after
                )
            }
        };
        let rows = query.limit(limit + 1).load::<ServiceRow>(conn)?;
        let items = loaded_rows_to_api(conn, rows)?;
        let mut page = Page::from_rows(items, limit, |_| ());
        if page.next_cursor.is_some()
            && let Some(last) = page.items.last()
        {
            let v = match sort {
                ServiceSort::Key | ServiceSort::KeyDesc => last.key.clone(),
                ServiceSort::Name | ServiceSort::NameDesc => last.name.clone(),
                ServiceSort::UpdatedAt | ServiceSort::UpdatedAtDesc => {
                    format_cursor_time(last.updated_at)
                }
            };
            page.next_cursor = Some(encode_cursor(&SortCursor::new(sort, v, last.id)));
        }
        Ok(page)
    }
}
