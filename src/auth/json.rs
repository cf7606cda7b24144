//! JSON objects that refuse duplicate members.
//!
//! RFC 7515 §5.2 and RFC 7519 §4 let a parser either refuse a JOSE header or claims set with
//! duplicate member names or keep the last one. Keeping one means two parsers can disagree on
//! what a token says, so we refuse.

use serde::de::{Deserializer, Error, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object in which every member name appears once.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct StrictObject(pub Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object without duplicate members")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    if map.contains_key(&name) {
                        return Err(A::Error::custom(format!("duplicate member {name:?}")));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(name, value);
                }
                Ok(StrictObject(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// For `#[serde(deserialize_with)]` on a `Map` field, e.g. a flattened one.
pub fn strict_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Map<String, Value>, D::Error> {
    StrictObject::deserialize(deserializer).map(|object| object.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_members_are_refused() {
        let error = serde_json::from_str::<StrictObject>(r#"{"a":1,"b":2,"a":3}"#).unwrap_err();
        assert!(
            error.to_string().contains("duplicate member \"a\""),
            "{error}"
        );
    }

    #[test]
    fn distinct_members_are_kept_in_order_of_name() {
        let object: StrictObject = serde_json::from_str(r#"{"b":{"x":1},"a":[1]}"#).unwrap();
        assert_eq!(
            Value::Object(object.0),
            serde_json::json!({"a": [1], "b": {"x": 1}})
        );
    }

    #[test]
    fn only_objects_are_objects() {
        for text in ["[]", "1", "\"a\"", "null"] {
            assert!(
                serde_json::from_str::<StrictObject>(text).is_err(),
                "{text}"
            );
        }
    }
}
