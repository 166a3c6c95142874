//! Diesel's view of the tables; the same for both engines (see `migrations/`).

diesel::table! {
    /// People with a login.
    users (id) {
        id -> BigInt,
        email -> Text,
        display_name -> Text,
        role -> Text,
        organization_id -> Nullable<BigInt>,
        password_hash -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        auth_epoch -> BigInt,
    }
}

diesel::table! {
    /// The append-only history of every change.
    events (id) {
        id -> BigInt,
        entity_type -> Text,
        entity_id -> BigInt,
        kind -> Text,
        actor_id -> Nullable<BigInt>,
        data -> Text,
        created_at -> Timestamp,
        origin -> Nullable<Text>,
        token_id -> Nullable<BigInt>,
        seq -> Nullable<BigInt>,
        item_snapshot -> Nullable<Text>,
    }
}

diesel::table! {
    /// This database's identity (one row), carried by the changes feed's cursors.
    installation (id) {
        id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// API tokens of scripts, stored as hashes.
    api_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        secret_hash -> Text,
        prefix -> Text,
        scopes -> Text,
        origin -> Nullable<Text>,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        created_by -> Nullable<BigInt>,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Stored first responses of requests with an `Idempotency-Key`.
    idempotency_keys (principal, idempotency_key) {
        principal -> Text,
        idempotency_key -> Text,
        fingerprint -> Text,
        method -> Text,
        path -> Text,
        status -> Nullable<Integer>,
        response_headers -> Nullable<Text>,
        response_body -> Nullable<Binary>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// External references of comments.
    comment_external_refs (comment_id, system) {
        comment_id -> BigInt,
        system -> Text,
        ext_key -> Text,
        url -> Nullable<Text>,
        source_updated_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(events -> users (actor_id));

diesel::table! {
    /// Stakeholder organizations.
    organizations (id) {
        id -> BigInt,
        short_name -> Text,
        name -> Text,
        kind -> Text,
        contact_email -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        parent_id -> Nullable<BigInt>,
        official_key -> Nullable<Text>,
        seat -> Nullable<Text>,
        members -> Text,
    }
}

diesel::table! {
    /// The catalogue of online services.
    services (id) {
        id -> BigInt,
        key -> Text,
        name -> Text,
        description -> Text,
        lifecycle -> Text,
        kind -> Text,
        maturity_level -> SmallInt,
        ozg_id -> Nullable<Text>,
        topic -> Nullable<Text>,
        operator_id -> Nullable<BigInt>,
        responsible_id -> Nullable<BigInt>,
        url -> Nullable<Text>,
        go_live_date -> Nullable<Date>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        raci_version -> BigInt,
    }
}

diesel::table! {
    /// LeiKa keys of services.
    service_leika_keys (service_id, leika_key) {
        service_id -> BigInt,
        leika_key -> Text,
        position -> Integer,
    }
}

diesel::table! {
    /// Tags of services.
    service_tags (service_id, tag) {
        service_id -> BigInt,
        tag -> Text,
    }
}

diesel::table! {
    /// RACI templates of services.
    service_raci (service_id, user_id, role) {
        service_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
    }
}

diesel::table! {
    /// Kanban boards.
    boards (id) {
        id -> BigInt,
        key -> Text,
        name -> Text,
        description -> Text,
        next_item_number -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,    lead_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The columns of boards.
    board_columns (id) {
        id -> BigInt,
        board_id -> BigInt,
        name -> Text,
        position -> Integer,
        category -> Text,
        wip_limit -> Nullable<Integer>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        pauses_sla -> Bool,
        bottom_rank_hint -> Nullable<Text>,
    }
}

diesel::table! {
    /// Demands, tasks and incidents.
    items (id) {
        id -> BigInt,
        board_id -> BigInt,
        number -> BigInt,
        key -> Text,
        item_type -> Text,
        title -> Text,
        description -> Text,
        service_id -> Nullable<BigInt>,
        column_id -> BigInt,
        rank -> Text,
        priority -> Text,
        due_date -> Nullable<Date>,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        done_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    /// Labels of items.
    item_labels (item_id, label) {
        item_id -> BigInt,
        label -> Text,
    }
}

diesel::table! {
    /// RACI roles on items.
    item_raci (item_id, user_id, role) {
        item_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
    }
}

diesel::table! {
    /// Comments on items.
    item_comments (id) {
        id -> BigInt,
        item_id -> BigInt,
        author_id -> BigInt,
        body -> Text,
        edited -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    /// Links between items.
    item_links (id) {
        id -> BigInt,
        source_id -> BigInt,
        target_id -> BigInt,
        kind -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// External references of items.
    item_external_refs (item_id, system) {
        item_id -> BigInt,
        system -> Text,
        ext_key -> Text,
        url -> Nullable<Text>,
        alias -> Nullable<Text>,
        source_updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Demand fields of demand items.
    demand_details (item_id) {
        item_id -> BigInt,
        requesting_org_id -> Nullable<BigInt>,
        proposed_service -> Nullable<Text>,
        desired_date -> Nullable<Date>,
        justification -> Text,
        value -> Nullable<Integer>,
        effort -> Nullable<Text>,
        decision -> Text,
        decision_reason -> Nullable<Text>,
        decided_by -> Nullable<BigInt>,
        decided_at -> Nullable<Timestamp>,
        target_quarter -> Nullable<Text>,
    }
}

diesel::table! {
    /// Incident fields of incident items.
    incident_details (item_id) {
        item_id -> BigInt,
        severity -> Text,
        reported_at -> Timestamp,
        reported_by_org_id -> Nullable<BigInt>,
        impact -> Text,
        first_response_at -> Nullable<Timestamp>,
        resolved_at -> Nullable<Timestamp>,
        resolution -> Nullable<Text>,
    }
}

diesel::table! {
    /// Services affected by an incident.
    incident_services (item_id, service_id) {
        item_id -> BigInt,
        service_id -> BigInt,
    }
}

diesel::table! {
    /// SLA targets per severity, optionally per service.
    sla_policies (id) {
        id -> BigInt,
        severity -> Text,
        service_id -> Nullable<BigInt>,
        response_minutes -> Integer,
        resolution_minutes -> Integer,
        clock -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// Rollout waves of a service.
    rollout_waves (id) {
        id -> BigInt,
        service_id -> BigInt,
        name -> Text,
        planned_start -> Nullable<Date>,
        planned_go_live -> Nullable<Date>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// One rollout entry per (service, administration).
    rollout_entries (id) {
        id -> BigInt,
        service_id -> BigInt,
        organization_id -> BigInt,
        wave_id -> Nullable<BigInt>,
        status -> Text,
        planned_go_live -> Nullable<Date>,
        actual_go_live -> Nullable<Date>,
        owner_id -> Nullable<BigInt>,
        blocker -> Nullable<Text>,
        checklist -> Text,
        notes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// Items that block rollout entries.
    rollout_blockers (entry_id, item_id) {
        entry_id -> BigInt,
        item_id -> BigInt,
    }
}

diesel::joinable!(rollout_waves -> services (service_id));
diesel::joinable!(rollout_entries -> services (service_id));
diesel::joinable!(rollout_entries -> organizations (organization_id));
diesel::joinable!(rollout_entries -> rollout_waves (wave_id));
diesel::joinable!(rollout_blockers -> rollout_entries (entry_id));
diesel::joinable!(rollout_blockers -> items (item_id));

diesel::table! {
    /// Each stay of an item in a column, derived from its history (the reports read it).
    item_intervals (id) {
        id -> BigInt,
        item_id -> BigInt,
        board_id -> BigInt,
        column_id -> BigInt,
        category -> Text,
        entered_at -> Timestamp,
        left_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Each item's start, finish and reopenings, derived from its history.
    item_flow (item_id) {
        item_id -> BigInt,
        board_id -> BigInt,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        reopen_count -> Integer,
        skipped_wip -> Bool,
        progress_seconds -> BigInt,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(demand_details -> items (item_id));
diesel::joinable!(demand_details -> organizations (requesting_org_id));
diesel::joinable!(incident_details -> items (item_id));
diesel::joinable!(incident_details -> organizations (reported_by_org_id));
diesel::joinable!(incident_services -> items (item_id));
diesel::joinable!(incident_services -> services (service_id));
diesel::joinable!(sla_policies -> services (service_id));
diesel::joinable!(item_comments -> items (item_id));
diesel::joinable!(item_intervals -> items (item_id));
diesel::joinable!(item_flow -> items (item_id));
diesel::joinable!(item_comments -> users (author_id));
diesel::joinable!(item_external_refs -> items (item_id));
diesel::joinable!(comment_external_refs -> item_comments (comment_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(webhook_deliveries -> webhook_subscriptions (subscription_id));
diesel::joinable!(webhook_subscriptions -> boards (board_id));
diesel::joinable!(board_columns -> boards (board_id));
diesel::joinable!(items -> boards (board_id));
diesel::joinable!(items -> board_columns (column_id));
diesel::joinable!(items -> services (service_id));
diesel::joinable!(item_labels -> items (item_id));
diesel::joinable!(item_raci -> items (item_id));
diesel::joinable!(item_raci -> users (user_id));
diesel::joinable!(service_leika_keys -> services (service_id));
diesel::joinable!(service_tags -> services (service_id));
diesel::joinable!(service_raci -> services (service_id));
diesel::joinable!(service_raci -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    events,
    item_intervals,
    item_flow,
    organizations,
    services,
    service_leika_keys,
    service_tags,
    service_raci,
    boards,
    board_columns,
    items,
    item_labels,
    item_raci,
    item_comments,
    item_links,
    item_external_refs,
    demand_details,
    incident_details,
    incident_services,
    sla_policies,
    installation,
    api_tokens,
    idempotency_keys,
    comment_external_refs,
    webhook_subscriptions,
    webhook_deliveries,
    rollout_waves,
    rollout_entries,
    rollout_blockers,
);

diesel::table! {
    /// Receivers subscribed to events (webhooks), with their signing secrets.
    webhook_subscriptions (id) {
        id -> BigInt,
        url -> Text,
        events -> Text,
        entity_type -> Nullable<Text>,
        board_id -> Nullable<BigInt>,
        description -> Text,
        active -> Bool,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        failing_since -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    /// The webhooks' outbox: one delivery per (event, subscription), and the test pings.
    webhook_deliveries (id) {
        id -> BigInt,
        subscription_id -> BigInt,
        event_id -> Nullable<BigInt>,
        message_id -> Text,
        event_type -> Text,
        entity_type -> Nullable<Text>,
        entity_id -> Nullable<BigInt>,
        payload -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        last_attempt_at -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_response -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}
