//! Reads a parsed JSON value into a Rust type the way the contract's schemas read it: a struct
//! comes from a JSON object only. (serde's derived structs also accept an array of the fields in
//! order, so `[null, null]` would pass for `{"name": null, "isActive": null}`.) Everything else is
//! read as `serde_json::Value` reads it.

use serde::de::value::StrDeserializer;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Value};

/// A deserializer over `value` whose structs, at any depth, are JSON objects.
pub struct ObjectsOnly<'a>(pub &'a Value);

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(flag) => Unexpected::Bool(*flag),
        Value::Number(_) => Unexpected::Other("number"),
        Value::String(text) => Unexpected::Str(text),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

impl<'de> Deserializer<'de> for ObjectsOnly<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(flag) => visitor.visit_bool(*flag),
            Value::Number(number) => number.clone().deserialize_any(visitor),
            Value::String(text) => visitor.visit_str(text),
            Value::Array(items) => visitor.visit_seq(Items(items.iter())),
            Value::Object(members) => visitor.visit_map(Members {
                iter: members.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(Error::invalid_type(unexpected(other), &"an object")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(text) => {
                let variant: StrDeserializer<'_, Error> = text.as_str().into_deserializer();
                variant.deserialize_enum(name, variants, visitor)
            }
            // No body of the contract holds an enum with data; read it as serde_json does.
            other => other.clone().deserialize_enum(name, variants, visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Items<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(ObjectsOnly(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Members<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'de> MapAccess<'de> for Members<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let key: StrDeserializer<'_, Error> = key.as_str().into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(ObjectsOnly(value)),
            None => Err(Error::custom("a value was asked before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    fn from_value<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, Error> {
        T::deserialize(ObjectsOnly(value))
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Body {
        name: Option<String>,
        is_active: Option<bool>,
        ranges: Option<Vec<Range>>,
        count: Option<u8>,
        kind: Option<Kind>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Range {
        start: String,
        end: String,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "UPPERCASE")]
    enum Kind {
        Open,
    }

    #[test]
    fn an_array_is_not_a_struct_at_any_depth() {
        assert!(from_value::<Body>(&json!([null, null])).is_err());
        assert!(serde_json::from_value::<Body>(json!([null, null, null, null, null])).is_ok());
        let nested = json!({"ranges": [["08:00", "12:00"]]});
        assert!(from_value::<Body>(&nested).is_err());
    }

    #[test]
    fn everything_else_reads_as_serde_json_reads_it() {
        let value = json!({"name": "Jean", "isActive": true, "ranges": [{"start": "08:00", "end": "12:00"}],
                           "count": 200, "kind": "OPEN"});
        assert_eq!(
            from_value::<Body>(&value).unwrap(),
            serde_json::from_value::<Body>(value.clone()).unwrap()
        );
        for bad in [
            json!({"count": 300}),
            json!({"count": -1}),
            json!({"name": 3}),
            json!({"kind": "SHUT"}),
            json!({"other": 1}),
            json!({"isActive": "yes"}),
        ] {
            assert!(from_value::<Body>(&bad).is_err(), "{bad}");
            assert!(
                serde_json::from_value::<Body>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(from_value::<Value>(&value).unwrap(), value);
    }
}
