//! The claims of a verified access token, typed as RFC 7519 says they must be.
//!
//! A registered claim of the wrong JSON type makes the whole token malformed; jsonwebtoken on
//! its own would treat some of them (an array `iss`, a numeric `sub`) as absent or accept them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// `aud`: one string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// An RFC 7519 NumericDate: a JSON number of seconds since the epoch, never negative.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct NumericDate(Number);

impl NumericDate {
    pub fn as_f64(&self) -> f64 {
        self.0.as_f64().unwrap_or(f64::NAN)
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = Number::deserialize(deserializer)?;
        match number.as_f64() {
            Some(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(NumericDate(number)),
            _ => Err(serde::de::Error::custom(
                "a NumericDate must be a non-negative number",
            )),
        }
    }
}

/// The verified claims. Unknown claims are kept in `extra`, so `/api/private` can echo them.
///
/// `iss`, `aud` and `exp` are `Option` so that a token lacking one is refused with a precise
/// reason ("missing exp claim") by the validator's required-claims check; in every `Claims`
/// the validator hands out `iss` and `exp` are `Some`, and `aud` too unless
/// `auth.audience_claim` names another claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// A JSON number (RFC 7519 NumericDate); its value is checked by the validator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<NumericDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<NumericDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Auth0's RBAC permissions. Kept raw: a non-array is not an error, it grants nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Value>,
    /// Every other claim. Duplicate names are refused here too, as for the registered ones.
    #[serde(flatten, deserialize_with = "crate::auth::json::strict_map")]
    pub extra: Map<String, Value>,
}

impl Claims {
    /// A top-level claim: `permissions` or any claim not typed above.
    pub fn member(&self, name: &str) -> Option<&Value> {
        match name {
            "permissions" => self.permissions.as_ref(),
            _ => self.extra.get(name),
        }
    }
}

/// Where a token's permissions are (`auth.permissions_claim`): an RFC 6901 JSON Pointer into
/// its claims, such as `/permissions` (Auth0), `/scope`, `/scp`, `/realm_access/roles`
/// (Keycloak) or `/urn:zitadel:iam:org:project:roles` (Zitadel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionsClaim {
    /// The pointer's reference tokens, unescaped (`~1` is `/`, `~0` is `~`).
    tokens: Vec<String>,
    /// Auth0's RBAC claim `/permissions` is an array by definition: there, and only there, a
    /// string or an object grants nothing, as it always has.
    arrays_only: bool,
}

impl Default for PermissionsClaim {
    fn default() -> Self {
        Self::new("/permissions")
    }
}

impl PermissionsClaim {
    /// From a pointer the settings checked (starting with `/`, `~` only as `~0` or `~1`).
    pub fn new(pointer: &str) -> Self {
        let tokens = pointer
            .split('/')
            .skip(1)
            .map(|token| token.replace("~1", "/").replace("~0", "~"))
            .collect();
        Self {
            tokens,
            arrays_only: pointer == "/permissions",
        }
    }

    /// Whether the value the pointer names grants `permission`, exactly and case-sensitively:
    /// an array holding it as a string, a space-separated string holding it as a word (an
    /// OAuth `scope`), or an object with it as a member name (the last two not at
    /// `/permissions`). Anything else (nothing there, a number, null, an array of arrays)
    /// grants nothing.
    pub fn grants(&self, claims: &Claims, permission: &str) -> bool {
        let Some((first, rest)) = self.tokens.split_first() else {
            return false;
        };
        let mut value = claims.member(first);
        for token in rest {
            value = match value {
                Some(Value::Object(members)) => members.get(token.as_str()),
                Some(Value::Array(items)) => array_index(token).and_then(|i| items.get(i)),
                _ => None,
            };
        }
        match value {
            Some(Value::Array(granted)) => granted.iter().any(|p| p.as_str() == Some(permission)),
            _ if self.arrays_only => false,
            Some(Value::String(words)) => words.split(' ').any(|word| word == permission),
            Some(Value::Object(members)) => members.contains_key(permission),
            _ => false,
        }
    }
}

/// An RFC 6901 array index: `0`, or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(extra: Value) -> Claims {
        let mut v = json!({"iss": "https://issuer/", "aud": "api", "exp": 2_000_000_000u64});
        for (name, value) in extra.as_object().unwrap() {
            v[name] = value.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn permissions_are_read_from_arrays_scope_strings_and_object_keys() {
        let claims = with(json!({
            "permissions": ["read:admin-messages"],
            "roles": "read:admin-messages",
            "scope": "openid read:admin-messages profile",
            "realm_access": {"roles": ["offline_access", "admin-messages-reader"]},
            "urn:zitadel:iam:org:project:roles": {"admin-reader": {"123": "org.example"}},
            "a/b": {"c~d": ["x"]},
            "list": [["nested"], ["read"]],
        }));
        let grants = |pointer: &str, permission: &str| {
            PermissionsClaim::new(pointer).grants(&claims, permission)
        };
        assert!(grants("/permissions", "read:admin-messages"));
        assert!(
            grants("/realm_access", "roles"),
            "an object grants its member names"
        );
        assert!(grants("/scope", "read:admin-messages"));
        assert!(grants("/roles", "read:admin-messages"));
        assert!(!grants("/scope", "read:admin"), "a word, not a substring");
        assert!(!grants("/scope", "Read:Admin-Messages"), "case-sensitive");
        assert!(grants("/realm_access/roles", "admin-messages-reader"));
        assert!(grants("/urn:zitadel:iam:org:project:roles", "admin-reader"));
        assert!(grants("/a~1b/c~0d", "x"), "~1 is / and ~0 is ~");
        assert!(grants("/list/1", "read"));
        assert!(!grants("/list/01", "read"), "no leading zero in an index");
        assert!(
            !grants("/list", "nested"),
            "an array of arrays grants nothing"
        );
        assert!(!grants("/missing/path", "x"));
    }

    #[test]
    fn values_of_other_types_grant_nothing() {
        for value in [
            json!(7),
            json!(null),
            json!(true),
            json!([1, 2]),
            json!([[["x"]]]),
        ] {
            let claims = with(json!({ "roles": value }));
            assert!(!PermissionsClaim::new("/roles").grants(&claims, "x"));
        }
    }

    fn claims(value: Value) -> Result<Claims, serde_json::Error> {
        serde_json::from_value(value)
    }

    fn base() -> Value {
        json!({"iss": "https://issuer/", "aud": "api", "exp": 2_000_000_000u64})
    }

    #[test]
    fn audience_may_be_a_string_or_an_array() {
        assert!(claims(base()).unwrap().aud.unwrap().contains("api"));
        let mut v = base();
        v["aud"] = json!(["other", "api"]);
        assert!(claims(v).unwrap().aud.unwrap().contains("api"));
    }

    #[test]
    fn registered_claims_of_the_wrong_type_are_refused() {
        for (name, bad) in [
            ("iss", json!(["https://issuer/"])),
            ("iss", json!(7)),
            ("aud", json!(7)),
            ("aud", json!({"a": 1})),
            ("aud", json!([1, 2])),
            ("exp", json!("2000000000")),
            ("exp", json!(true)),
            ("exp", json!(-1)),
            ("nbf", json!("0")),
            ("iat", json!([])),
            ("sub", json!(42)),
        ] {
            let mut v = base();
            v[name] = bad.clone();
            assert!(claims(v).is_err(), "{name} = {bad}");
        }
    }

    #[test]
    fn missing_registered_claims_parse_as_absent_for_the_validator_to_refuse() {
        for name in ["iss", "aud", "exp"] {
            let mut v = base();
            v.as_object_mut().unwrap().remove(name);
            let parsed = claims(v).unwrap();
            assert!(parsed.iss.is_none() || parsed.aud.is_none() || parsed.exp.is_none());
        }
    }

    #[test]
    fn permission_must_be_a_string_in_an_array() {
        let with = |p: Value| {
            let mut v = base();
            v["permissions"] = p;
            PermissionsClaim::default().grants(&claims(v).unwrap(), "read:admin-messages")
        };
        assert!(with(json!(["read:admin-messages"])));
        assert!(!with(json!([])));
        assert!(!with(json!("read:admin-messages")));
        assert!(!with(json!({"read:admin-messages": true})));
        assert!(!with(json!(["read:admin-messages-x"])));
        assert!(
            !PermissionsClaim::default().grants(&claims(base()).unwrap(), "read:admin-messages")
        );
    }

    #[test]
    fn duplicate_claims_are_refused_registered_or_not() {
        for text in [
            r#"{"iss":"a","aud":"b","exp":1,"aud":"c"}"#,
            r#"{"iss":"a","aud":"b","exp":1,"scope":"read","scope":"admin"}"#,
            r#"{"iss":"a","aud":"b","exp":1,"permissions":[],"permissions":["read:admin-messages"]}"#,
        ] {
            assert!(serde_json::from_str::<Claims>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn unknown_claims_round_trip() {
        let mut v = base();
        v["scope"] = json!("openid");
        v["https://example.com/roles"] = json!(["a"]);
        let parsed = claims(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), v);
    }
}
