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
