//! Fixture builders over HTTP, after crates.io's `CrateBuilder::new(..).expect_build(conn)`:
//!
//! ```ignore
//! let lk = app.organization("LK-A").create().await;
//! let (lead, lead_token) = app.user("manager").create().await;
//! let (requester, token) = app.user("requester").organization(&lk).create().await;
//! let board = app.board("OPS").lead(&lead).create().await;
//! app.service("wohngeld").accountable(&lead).responsible(&[&worker]).create().await;
//! let item = app.item("OPS").incident().severity("s2").service("wohngeld").create().await;
//! let demand = app.demand().by(&token).service("wohngeld").create().await;
//! let ready = board.column_id("Ready");
//! ```
//!
//! A builder sends the requests a client would send (as the first admin unless `by` names
//! another token), so that tests stay black-box; `create()` asserts that each of them
//! succeeded and panics with the response text otherwise, so that a failing set-up says what
//! failed. A test of the endpoint itself (its status, headers, refusals) keeps sending its own
//! request: builders are for what a test needs, not for what it checks.

use serde_json::{Value, json};

use crate::helpers::{COUNTER, Response, TestApp, USER_PASSWORD};

/// Asserts that `response` has `status`, naming `what` and the response text otherwise;
/// returns the body (JSON, or `null` when there is none).
fn expect(response: Response, status: u16, what: &str) -> Value {
    assert_eq!(
        response.status, status,
        "set-up failed: {what}: {}",
        response.text
    );
    if response.text.is_empty() {
        Value::Null
    } else {
        response.json()
    }
}

/// Merges `extra` into `into`, objects field by field (so that `{"incident": {"impact": …}}`
/// keeps a severity set before), anything else by replacing it.
fn merge(into: &mut Value, extra: Value) {
    match (into, extra) {
        (Value::Object(into), Value::Object(extra)) => {
            for (field, value) in extra {
                merge(into.entry(field).or_insert(Value::Null), value);
            }
        }
        (into, extra) => *into = extra,
    }
}

/// The ids of `people` (user objects as the API returns them), as a JSON list.
fn ids(people: &[&Value]) -> Value {
    Value::Array(people.iter().map(|p| p["id"].clone()).collect())
}

/// RACI roles that a service template or an item is created with.
#[derive(Default)]
struct Raci(Value);

impl Raci {
    fn set(&mut self, role: &str, value: Value) {
        self.0[role] = value;
    }

    fn is_empty(&self) -> bool {
        self.0.is_null()
    }
}

impl TestApp {
    /// An organization `short_name` (named like it, a municipality unless `kind` says
    /// otherwise).
    pub fn organization(&self, short_name: &str) -> OrganizationBuilder<'_> {
        OrganizationBuilder {
            app: self,
            body: json!({"short_name": short_name, "name": short_name, "kind": "municipality"}),
        }
    }

    /// A user with `role`, logged in once: `create()` gives `(user, token)`. The e-mail is
    /// unique (`{role}{n}@opsboard.test`), the password [`USER_PASSWORD`].
    pub fn user(&self, role: &str) -> UserBuilder<'_> {
        UserBuilder {
            app: self,
            role: role.to_string(),
            organization: None,
        }
    }

    /// A board `key` (named like it) with the default workflow unless `columns` says otherwise.
    pub fn board(&self, key: &str) -> BoardBuilder<'_> {
        BoardBuilder {
            app: self,
            body: json!({"key": key, "name": key}),
        }
    }

    /// A column `name` added to board `board` (category `todo` unless told otherwise).
    pub fn column(&self, board: &str, name: &str) -> ColumnBuilder<'_> {
        ColumnBuilder {
            app: self,
            board: board.to_string(),
            body: json!({"name": name, "category": "todo"}),
        }
    }

    /// An online service `key` (named like it, kind `own`), with a RACI template when
    /// `accountable` and the other roles are given.
    pub fn service(&self, key: &str) -> ServiceBuilder<'_> {
        ServiceBuilder {
            app: self,
            body: json!({"key": key, "name": key, "kind": "own"}),
            raci: Raci::default(),
        }
    }

    /// An item on board `board`: a task titled "Test item" unless told otherwise.
    pub fn item(&self, board: &str) -> ItemBuilder<'_> {
        ItemBuilder {
            app: self,
            token: self.admin_token.clone(),
            body: json!({"board": board, "type": "task", "title": "Test item"}),
        }
    }

    /// A demand raised through `POST /demands` (by the admin unless `by` names a requester).
    pub fn demand(&self) -> DemandBuilder<'_> {
        DemandBuilder {
            app: self,
            token: self.admin_token.clone(),
            body: json!({"title": "Test demand", "justification": "Needed by the test."}),
        }
    }

    /// An SLA policy for `severity`, for every service unless `service` names one; 30 and 240
    /// business minutes unless `minutes` and `clock` say otherwise.
    pub fn sla_policy(&self, severity: &str) -> SlaPolicyBuilder<'_> {
        SlaPolicyBuilder {
            app: self,
            token: self.admin_token.clone(),
            body: json!({"severity": severity, "response_minutes": 30, "resolution_minutes": 240}),
        }
    }
}

/// Builds an organization; see [`TestApp::organization`].
pub struct OrganizationBuilder<'a> {
    app: &'a TestApp,
    body: Value,
}

impl OrganizationBuilder<'_> {
    /// Its kind (`ministry`, `it_operator`, …).
    pub fn kind(mut self, kind: &str) -> Self {
        self.body["kind"] = json!(kind);
        self
    }

    /// Creates it; returns it as the API does.
    pub async fn create(self) -> Value {
        let what = format!("creating organization {}", self.body["short_name"]);
        let response = self
            .app
            .post("/api/v1/organizations", &self.app.admin_token, &self.body)
            .await;
        expect(response, 201, &what)
    }
}

/// Builds a user; see [`TestApp::user`].
pub struct UserBuilder<'a> {
    app: &'a TestApp,
    role: String,
    organization: Option<Value>,
}

impl UserBuilder<'_> {
    /// The organization the person belongs to (an organization as the API returns it).
    pub fn organization(mut self, organization: &Value) -> Self {
        self.organization = Some(organization["id"].clone());
        self
    }

    /// Creates them and logs them in once (a login attempt that the throttling tests count):
    /// `(user, token)`.
    pub async fn create(self) -> (Value, String) {
        let app = self.app;
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let role = &self.role;
        let email = format!("{role}{n}@opsboard.test");
        let what = format!("creating user {email}");
        let body = json!({"email": email, "display_name": format!("{role} {n}"), "role": role,
                          "password": USER_PASSWORD});
        let mut user = expect(
            app.post("/api/v1/users", &app.admin_token, &body).await,
            201,
            &what,
        );
        if let Some(organization) = self.organization {
            let path = format!("/api/v1/users/{}", user["id"]);
            let body = json!({"organization_id": organization});
            let what = format!("putting {email} into organization {organization}");
            user = expect(app.patch(&path, &app.admin_token, &body).await, 200, &what);
        }
        let token = app.login(&email, USER_PASSWORD).await;
        (user, token)
    }
}

/// A board as the API returns it, with readers for what tests look up in it.
pub struct Board {
    /// The board, columns included.
    pub json: Value,
}

impl Board {
    /// The id of the column `name`; panics when the board has none of that name.
    pub fn column_id(&self, name: &str) -> i64 {
        self.json["columns"]
            .as_array()
            .and_then(|columns| columns.iter().find(|c| c["name"] == name))
            .and_then(|c| c["id"].as_i64())
            .unwrap_or_else(|| panic!("no column {name} in {}", self.json))
    }
}

/// Builds a board; see [`TestApp::board`].
pub struct BoardBuilder<'a> {
    app: &'a TestApp,
    body: Value,
}

impl BoardBuilder<'_> {
    /// Its name.
    pub fn name(mut self, name: &str) -> Self {
        self.body["name"] = json!(name);
        self
    }

    /// Its columns, as `POST /boards` takes them: `[{"name": …, "category": …}, …]`.
    pub fn columns(mut self, columns: Value) -> Self {
        self.body["columns"] = columns;
        self
    }

    /// Its lead (a user as the API returns them), accountable for demands without a service.
    pub fn lead(mut self, lead: &Value) -> Self {
        self.body["lead"] = lead["id"].clone();
        self
    }

    /// Creates it.
    pub async fn create(self) -> Board {
        let what = format!("creating board {}", self.body["key"]);
        let response = self
            .app
            .post("/api/v1/boards", &self.app.admin_token, &self.body)
            .await;
        Board {
            json: expect(response, 201, &what),
        }
    }
}

/// Builds a column; see [`TestApp::column`].
pub struct ColumnBuilder<'a> {
    app: &'a TestApp,
    board: String,
    body: Value,
}

impl ColumnBuilder<'_> {
    /// Its category (`todo`, `in_progress`, `done`).
    pub fn category(mut self, category: &str) -> Self {
        self.body["category"] = json!(category);
        self
    }

    /// Its position (0 is the first column); at the end when not given.
    pub fn position(mut self, position: i64) -> Self {
        self.body["position"] = json!(position);
        self
    }

    /// Adds it; returns the column.
    pub async fn create(self) -> Value {
        let what = format!("adding column {} to {}", self.body["name"], self.board);
        let path = format!("/api/v1/boards/{}/columns", self.board);
        let response = self
            .app
            .post(&path, &self.app.admin_token, &self.body)
            .await;
        expect(response, 201, &what)
    }
}

/// Builds a service; see [`TestApp::service`].
pub struct ServiceBuilder<'a> {
    app: &'a TestApp,
    body: Value,
    raci: Raci,
}

impl ServiceBuilder<'_> {
    /// Its name.
    pub fn name(mut self, name: &str) -> Self {
        self.body["name"] = json!(name);
        self
    }

    /// Further fields of `POST /services` (`lifecycle`, `operator`, `tags`, …), merged into
    /// the body.
    pub fn with(mut self, fields: Value) -> Self {
        merge(&mut self.body, fields);
        self
    }

    /// The accountable person of its RACI template (a user as the API returns them).
    pub fn accountable(mut self, person: &Value) -> Self {
        self.raci.set("accountable", person["id"].clone());
        self
    }

    /// The responsible people of its RACI template.
    pub fn responsible(mut self, people: &[&Value]) -> Self {
        self.raci.set("responsible", ids(people));
        self
    }

    /// Creates it, then its RACI template if one was given; returns the service as it then
    /// is.
    pub async fn create(self) -> Value {
        let app = self.app;
        let key = self.body["key"].as_str().unwrap_or_default().to_string();
        let service = expect(
            app.post("/api/v1/services", &app.admin_token, &self.body)
                .await,
            201,
            &format!("creating service {key}"),
        );
        if self.raci.is_empty() {
            return service;
        }
        let path = format!("/api/v1/services/{key}/raci");
        let response = app.put(&path, &app.admin_token, &self.raci.0).await;
        expect(
            response,
            200,
            &format!("setting the RACI template of {key} to {}", self.raci.0),
        );
        let path = format!("/api/v1/services/{key}");
        expect(
            app.get(&path, &app.admin_token).await,
            200,
            &format!("reading service {key}"),
        )
    }
}

/// Builds an item; see [`TestApp::item`].
pub struct ItemBuilder<'a> {
    app: &'a TestApp,
    token: String,
    body: Value,
}

impl ItemBuilder<'_> {
    /// Creates it as the holder of `token` instead of the admin.
    pub fn by(mut self, token: &str) -> Self {
        self.token = token.to_string();
        self
    }

    /// A task (the default).
    pub fn task(mut self) -> Self {
        self.body["type"] = json!("task");
        self
    }

    /// An incident (with the severity its priority suggests unless `severity` names one).
    pub fn incident(mut self) -> Self {
        self.body["type"] = json!("incident");
        self
    }

    /// A demand.
    pub fn demand(mut self) -> Self {
        self.body["type"] = json!("demand");
        self
    }

    /// Its title.
    pub fn title(mut self, title: &str) -> Self {
        self.body["title"] = json!(title);
        self
    }

    /// Its online service.
    pub fn service(mut self, key: &str) -> Self {
        self.body["service"] = json!(key);
        self
    }

    /// Its priority.
    pub fn priority(mut self, priority: &str) -> Self {
        self.body["priority"] = json!(priority);
        self
    }

    /// Its labels.
    pub fn labels(mut self, labels: &[&str]) -> Self {
        self.body["labels"] = json!(labels);
        self
    }

    /// Its accountable person (a user as the API returns them), instead of the service's.
    pub fn accountable(mut self, person: &Value) -> Self {
        self.body["raci"]["accountable"] = person["id"].clone();
        self
    }

    /// The incident's severity.
    pub fn severity(mut self, severity: &str) -> Self {
        self.body["incident"]["severity"] = json!(severity);
        self
    }

    /// When the incident was reported.
    pub fn reported_at(mut self, at: &str) -> Self {
        self.body["incident"]["reported_at"] = json!(at);
        self
    }

    /// Further fields of `POST /items` (`external_refs`, `incident.impact`, `demand`, …),
    /// merged into the body field by field.
    pub fn with(mut self, fields: Value) -> Self {
        merge(&mut self.body, fields);
        self
    }

    /// Creates it; returns it as the API does.
    pub async fn create(self) -> Value {
        let what = format!("creating item {}", self.body);
        expect(
            self.app
                .post("/api/v1/items", &self.token, &self.body)
                .await,
            201,
            &what,
        )
    }
}

/// Builds a demand; see [`TestApp::demand`].
pub struct DemandBuilder<'a> {
    app: &'a TestApp,
    token: String,
    body: Value,
}

impl DemandBuilder<'_> {
    /// Raises it as the holder of `token` (a requester, say) instead of the admin.
    pub fn by(mut self, token: &str) -> Self {
        self.token = token.to_string();
        self
    }

    /// Its title.
    pub fn title(mut self, title: &str) -> Self {
        self.body["title"] = json!(title);
        self
    }

    /// The online service it is for.
    pub fn service(mut self, key: &str) -> Self {
        self.body["service"] = json!(key);
        self
    }

    /// Why it is needed.
    pub fn justification(mut self, justification: &str) -> Self {
        self.body["justification"] = json!(justification);
        self
    }

    /// Further fields of `POST /demands` (`proposed_service`, `desired_date`, …).
    pub fn with(mut self, fields: Value) -> Self {
        merge(&mut self.body, fields);
        self
    }

    /// Raises it; returns the demand as the API does.
    pub async fn create(self) -> Value {
        let what = format!("raising demand {}", self.body);
        expect(
            self.app
                .post("/api/v1/demands", &self.token, &self.body)
                .await,
            201,
            &what,
        )
    }
}

/// Builds an SLA policy; see [`TestApp::sla_policy`].
pub struct SlaPolicyBuilder<'a> {
    app: &'a TestApp,
    token: String,
    body: Value,
}

impl SlaPolicyBuilder<'_> {
    /// Creates it as the holder of `token` instead of the admin.
    pub fn by(mut self, token: &str) -> Self {
        self.token = token.to_string();
        self
    }

    /// The one service it is for; `None` is every service.
    pub fn service<'k>(mut self, key: impl Into<Option<&'k str>>) -> Self {
        match key.into() {
            Some(key) => self.body["service"] = json!(key),
            None => {
                if let Some(body) = self.body.as_object_mut() {
                    body.remove("service");
                }
            }
        }
        self
    }

    /// Its response and resolution targets, in minutes.
    pub fn minutes(mut self, response: i64, resolution: i64) -> Self {
        self.body["response_minutes"] = json!(response);
        self.body["resolution_minutes"] = json!(resolution);
        self
    }

    /// Its clock: `business` (the default) or `calendar`.
    pub fn clock(mut self, clock: &str) -> Self {
        self.body["clock"] = json!(clock);
        self
    }

    /// Creates it; returns it as the API does.
    pub async fn create(self) -> Value {
        let what = format!("creating SLA policy {}", self.body);
        expect(
            self.app
                .post("/api/v1/sla-policies", &self.token, &self.body)
                .await,
            201,
            &what,
        )
    }
}

/// The keys of a list page's `items` (`GET /items`, `/services`, `/demands`, …), in order.
pub fn keys(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The kinds of a history page's events, oldest first.
pub fn kinds(history: &Value) -> Vec<String> {
    history["items"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The last event of a history page (`null` when there is none).
pub fn last_event(history: &Value) -> Value {
    history["items"]
        .as_array()
        .and_then(|events| events.last())
        .cloned()
        .unwrap_or_default()
}
