//! Builders for the schemas of the bodies the routes answer.

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};

/// An object with exactly these properties, `required` among them.
pub fn object(
    properties: impl IntoIterator<Item = (&'static str, Schema)>,
    required: &[&str],
) -> Schema {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    for (name, schema) in properties {
        object = object.property(name, schema);
    }
    for name in required {
        object = object.required(*name);
    }
    object.into()
}

pub fn string(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .into()
}

/// A string that is always `value`.
pub fn constant(value: &str) -> Schema {
    one_of([value])
}

/// One of these strings.
pub fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .into()
}

pub fn integer(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .description(Some(description))
        .into()
}

pub fn nullable_integer(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(0))
        .description(Some(description))
        .into()
}

pub fn strings(description: &str) -> Schema {
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .into()
}

fn numeric_date(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0))
        .description(Some(description))
        .into()
}

/// Verified claims: the registered ones typed as RFC 7519 says, any others as the token
/// carries them.
pub fn claims() -> Schema {
    let audience = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some("Audience: one string or an array of strings"));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("iss", string("Issuer"))
        .property("sub", string("Subject"))
        .property("aud", audience)
        .property("exp", numeric_date("Expiry, seconds since the epoch"))
        .property("nbf", numeric_date("Not before, seconds since the epoch"))
        .property("iat", numeric_date("Issued at, seconds since the epoch"))
        .property(
            "permissions",
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .description(Some("Auth0's RBAC permissions, as the token carries them")),
        )
        .required("iss")
        .required("exp")
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(true)))
        .into()
}

/// An OpenAPI 3.1 document, loosely: its required members.
pub fn document() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "openapi",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^3\.1\.\d+$")),
        )
        .property("info", ObjectBuilder::new().schema_type(Type::Object))
        .property("paths", ObjectBuilder::new().schema_type(Type::Object))
        .required("openapi")
        .required("info")
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(true)))
        .into()
}
