//! The OpenAPI document is the contract: committed, served, complete, and Swagger UI works
//! without any other host.

use actix_web::http::Method;
use serde_json::Value;

use crate::helpers::{Engine, TestApp};

fn generated() -> String {
    opsboard::openapi::to_pretty_json(&opsboard::openapi_document())
}

#[test]
fn committed_openapi_json_matches_the_code() {
    let committed = std::fs::read_to_string("openapi/openapi.json").unwrap_or_default();
    if committed != generated() {
        panic!(
            "openapi/openapi.json is out of date; regenerate it with \
             `cargo run -- openapi > openapi/openapi.json` and commit it"
        );
    }
}

#[test]
fn every_operation_documents_its_errors_and_security() {
    let doc: Value = serde_json::from_str(&generated()).expect("JSON");
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let open = ["/health", "/ready", "/api/v1/auth/login"];
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 7);
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.contains_key("500"), "{method} {path} lacks 500");
            assert!(
                op["summary"].is_string() && op["description"].is_string(),
                "{method} {path} is undocumented"
            );
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(
                secured,
                !open.contains(&path.as_str()),
                "{method} {path}: security"
            );
            if secured {
                assert!(
                    responses.contains_key("401") && responses.contains_key("403"),
                    "{method} {path}"
                );
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
    }
}

#[actix_web::test]
async fn the_served_document_is_the_committed_one_and_swagger_ui_is_offline() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let served = app
        .request(Method::GET, "/api-docs/openapi.json")
        .send()
        .await;
    assert_eq!(served.status, 200);
    let expected: Value = serde_json::from_str(&generated()).expect("JSON");
    assert_eq!(served.json(), expected);

    let redirect = app.request(Method::GET, "/swagger-ui").send().await;
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location").as_deref(), Some("/swagger-ui/"));
    let page = app.request(Method::GET, "/swagger-ui/").send().await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("swagger-ui"), "{}", page.text);
    let initializer = app
        .request(Method::GET, "/swagger-ui/swagger-initializer.js")
        .send()
        .await;
    assert_eq!(initializer.status, 200);
    assert!(
        initializer.text.contains("/api-docs/openapi.json"),
        "{}",
        initializer.text
    );
    assert!(
        initializer.text.contains("\"validatorUrl\": \"none\"")
            || initializer.text.contains("\"validatorUrl\":\"none\""),
        "{}",
        initializer.text
    );
    // Every script and stylesheet the page loads comes from this server.
    for asset in page
        .text
        .split(['"', '\''])
        .filter(|s| s.ends_with(".js") || s.ends_with(".css") || s.ends_with(".png"))
    {
        assert!(!asset.contains("://"), "external asset {asset}");
        let path = format!("/swagger-ui/{}", asset.trim_start_matches("./"));
        assert_eq!(
            app.request(Method::GET, &path).send().await.status,
            200,
            "{path}"
        );
    }
    assert!(
        !page.text.contains("http://") && !page.text.contains("https://"),
        "{}",
        page.text
    );
}

/// Every list a client can send has a bound: each array inside a request body, however deep
/// (through `$ref`, `oneOf`, properties and items), declares `maxItems`, which the server
/// enforces (see `hardening_edges::every_list_limit_in_the_spec_is_the_servers`).
/// Every `$ref` of the document names a component that exists: a dangling one (an enum used
/// only as a query parameter, which utoipa does not collect) breaks generated clients.
#[test]
fn every_reference_resolves() {
    let document: serde_json::Value =
        serde_json::from_str(&generated()).expect("the document is JSON");
    let mut dangling = Vec::new();
    let mut stack = vec![&document];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    let pointer = target.trim_start_matches('#');
                    if document.pointer(pointer).is_none() {
                        dangling.push(target.clone());
                    }
                }
                stack.extend(map.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    dangling.sort();
    dangling.dedup();
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");
}

#[test]
fn every_list_in_a_request_body_has_max_items() {
    fn walk(
        doc: &Value,
        schema: &Value,
        at: &str,
        seen: &mut Vec<String>,
        missing: &mut Vec<String>,
    ) {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.rsplit('/').next().unwrap_or_default().to_string();
            if !seen.contains(&name) {
                seen.push(name.clone());
                let inner = format!("{at} -> {name}");
                walk(
                    doc,
                    &doc["components"]["schemas"][&name],
                    &inner,
                    seen,
                    missing,
                );
                seen.pop();
            }
            return;
        }
        let is_array = schema["type"] == "array"
            || schema["type"]
                .as_array()
                .is_some_and(|types| types.iter().any(|t| t == "array"));
        if is_array && !schema["maxItems"].is_u64() {
            missing.push(at.to_string());
        }
        for combinator in ["oneOf", "anyOf", "allOf"] {
            for (i, option) in schema[combinator]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                walk(
                    doc,
                    option,
                    &format!("{at}/{combinator}[{i}]"),
                    seen,
                    missing,
                );
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                walk(doc, property, &format!("{at}.{name}"), seen, missing);
            }
        }
        for nested in ["items", "additionalProperties"] {
            if schema[nested].is_object() {
                walk(doc, &schema[nested], &format!("{at}[]"), seen, missing);
            }
        }
    }
    let doc: Value = serde_json::from_str(&generated()).expect("JSON");
    let mut missing = Vec::new();
    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            for (media, content) in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                bodies += 1;
                let at = format!("{} {path} ({media}) ", method.to_uppercase());
                walk(&doc, &content["schema"], &at, &mut Vec::new(), &mut missing);
            }
        }
    }
    assert!(bodies > 20, "the walk found only {bodies} request bodies");
    assert!(
        missing.is_empty(),
        "request-body lists without maxItems:\n{}",
        missing.join("\n")
    );
}
