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
    }
}

diesel::joinable!(events -> users (actor_id));
diesel::allow_tables_to_appear_in_same_query!(users, events);
