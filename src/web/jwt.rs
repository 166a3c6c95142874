//! Access tokens: HS256 JWTs with `sub`, `role`, `auth_epoch`, `iat`, `exp`, `iss` and `aud`.
//! The algorithm is pinned on both sides, so a token signed otherwise (or `alg: none`) is
//! refused. `auth_epoch` is the user's token epoch when the token was issued; the caller
//! extractor refuses the token once the user's epoch has moved on (password, role, deactivation).

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::common::error::ApiError;
use crate::web::settings::AuthSettings;

/// The claims of an opsboard access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id, as a string (RFC 7519 wants a string).
    pub sub: String,
    /// The user's role when the token was issued (informational: every request re-reads it).
    pub role: String,
    /// The user's token epoch when the token was issued. Optional here only so that a token
    /// without it gets a clear 401 from the extractor rather than "malformed".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_epoch: Option<i64>,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// Signing and verification keys with the expected issuer and audience.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: i64,
}

impl JwtKeys {
    /// Keys for `secret`, checking `iss` and `aud` from the settings.
    pub fn new(secret: &[u8], auth: &AuthSettings) -> Result<Self, String> {
        let encoding = EncodingKey::from_secret(secret).map_err(|e| e.to_string())?;
        let decoding = DecodingKey::from_secret(secret).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[&auth.jwt_issuer]);
        validation.set_audience(&[&auth.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Ok(JwtKeys {
            encoding,
            decoding,
            validation,
            issuer: auth.jwt_issuer.clone(),
            audience: auth.jwt_audience.clone(),
            ttl_seconds: auth.token_ttl_minutes * 60,
        })
    }

    /// Token lifetime in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// Issues a token for a user at their present token epoch.
    pub fn issue(&self, user_id: i64, role: &str, auth_epoch: i64) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            role: role.to_string(),
            auth_epoch: Some(auth_epoch),
            iat: now,
            exp: now + self.ttl_seconds,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("token signing failed: {e}")))
    }

    /// Verifies signature, algorithm, expiry, issuer and audience; returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "The access token has expired.",
                    ErrorKind::InvalidIssuer => "The access token was issued by someone else.",
                    ErrorKind::InvalidAudience => "The access token is meant for another audience.",
                    ErrorKind::InvalidAlgorithm => "The access token is not signed with HS256.",
                    ErrorKind::InvalidSignature => "The access token's signature is invalid.",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "The access token lacks a required claim."
                    }
                    _ => "The access token is malformed.",
                };
                ApiError::Unauthorized(why.to_string())
            })
    }
}
