//! Tag values from Modbus registers and back: the data types, the four
//! byte/word orders (named by where the bytes of the big-endian `ABCD`
//! arrive), scale and offset, and the checks a written value must pass
//! (its type's range after undoing scale and offset) before any register
//! is touched.

use grammar::config::{ByteOrder, DataType, Tag};
use serde_json::Value as Json;

/// A tag's value as published.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
}

impl Value {
    pub fn to_json(&self) -> Json {
        match self {
            Value::Bool(b) => Json::from(*b),
            Value::Int(n) => Json::from(*n),
            Value::UInt(n) => Json::from(*n),
            // NaN and infinities have no JSON form: null says "no number".
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(Json::Null, Json::Number),
            Value::Text(s) => Json::from(s.as_str()),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Int(n) => Some(*n as f64),
            Value::UInt(n) => Some(*n as f64),
            Value::Float(x) => Some(*x),
            Value::Text(_) => None,
        }
    }

    /// Whether `self` differs from `before` by more than `deadband`
    /// (texts and booleans: any change).
    pub fn changed(&self, before: &Value, deadband: f64) -> bool {
        match (self.number(), before.number(), self, before) {
            (_, _, Value::Bool(a), Value::Bool(b)) => a != b,
            (Some(a), Some(b), _, _) => {
                let moved = (a - b).abs();
                // NaN compares false: a NaN that appears or goes is a change.
                moved > deadband || (moved.is_nan() && a.is_nan() != b.is_nan())
            }
            _ => self != before,
        }
    }
}

/// The register bytes of a value in big-endian order (`ABCD...`), from
/// registers as the device sent them.
fn ordered_bytes(registers: &[u16], order: ByteOrder) -> Vec<u8> {
    let mut words: Vec<u16> = registers.to_vec();
    if order.swaps_words() {
        words.reverse();
    }
    words
        .iter()
        .flat_map(|w| match order.swaps_bytes() {
            true => w.to_le_bytes(),
            false => w.to_be_bytes(),
        })
        .collect()
}

/// The registers that carry big-endian `bytes` in `order` (inverse of
/// [`ordered_bytes`]).
fn registers_of(bytes: &[u8], order: ByteOrder) -> Vec<u16> {
    let mut words: Vec<u16> = bytes
        .chunks(2)
        .map(|pair| {
            let (hi, lo) = (
                pair.first().copied().unwrap_or(0),
                pair.get(1).copied().unwrap_or(0),
            );
            match order.swaps_bytes() {
                true => u16::from_le_bytes([hi, lo]),
                false => u16::from_be_bytes([hi, lo]),
            }
        })
        .collect();
    if order.swaps_words() {
        words.reverse();
    }
    words
}

/// The raw value of `data_type` in `registers` (bits: one register per
/// bit, 0 or 1); None when there are too few.
pub fn decode(registers: &[u16], data_type: DataType, order: ByteOrder) -> Option<Value> {
    let width = usize::from(data_type.registers(registers.len() as u16));
    let registers = registers.get(..width)?;
    if data_type == DataType::String {
        // Two characters a register; only the bytes of each are swapped
        // (word order means nothing for text); NULs pad the end.
        let order = if order.swaps_bytes() {
            ByteOrder::Badc
        } else {
            ByteOrder::Abcd
        };
        let bytes = ordered_bytes(registers, order);
        let text: String = bytes.iter().map(|&b| b as char).collect();
        return Some(Value::Text(text.trim_end_matches(['\0', ' ']).to_string()));
    }
    let bytes = ordered_bytes(registers, order);
    let be = |n: usize| -> Option<[u8; 8]> {
        let mut out = [0u8; 8];
        out[8 - n..].copy_from_slice(bytes.get(..n)?);
        Some(out)
    };
    let u = |n: usize| be(n).map(u64::from_be_bytes);
    Some(match data_type {
        DataType::Bool => Value::Bool(registers.first()? != &0),
        DataType::Int16 => Value::Int(i64::from(u(2)? as u16 as i16)),
        DataType::Uint16 => Value::UInt(u(2)?),
        DataType::Int32 => Value::Int(i64::from(u(4)? as u32 as i32)),
        DataType::Uint32 => Value::UInt(u(4)?),
        DataType::Int64 => Value::Int(u(8)? as i64),
        DataType::Float32 => Value::Float(widened(f32::from_bits(u(4)? as u32))),
        DataType::Float64 => Value::Float(f64::from_bits(u(8)?)),
        DataType::String => return None,
    })
}

/// A float32 as the f64 with its shortest decimal form, so that 0.1 is
/// published as 0.1, not 0.10000000149011612.
fn widened(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// A tag's published value: the raw one scaled (`raw * scale + offset`,
/// a float) when the tag has a scale or an offset, as read otherwise.
pub fn scaled(raw: Value, tag: &Tag) -> Value {
    if tag.scale.is_none() && tag.offset.is_none() {
        return raw;
    }
    match raw.number() {
        Some(x) if !matches!(raw, Value::Bool(_)) => {
            let scale = tag.scale.map_or(1.0, |s| s.0);
            let offset = tag.offset.map_or(0.0, |o| o.0);
            Value::Float(x * scale + offset)
        }
        _ => raw,
    }
}

/// The registers (bits: 0 or 1) that write `value` to `tag`, or why it
/// cannot be written: the wrong kind of value, or out of the type's range
/// once scale and offset are undone.
pub fn encode(value: &Json, tag: &Tag) -> Result<Vec<u16>, String> {
    let data_type = tag.data_type();
    let order = tag.byte_order.unwrap_or_default();
    if data_type == DataType::String {
        let text = value.as_str().ok_or("a string is expected")?;
        let capacity = usize::from(tag.length.unwrap_or(0)) * 2;
        if !text.is_ascii() || text.len() > capacity {
            return Err(format!("at most {capacity} ASCII characters"));
        }
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(capacity, 0);
        let order = if order.swaps_bytes() {
            ByteOrder::Badc
        } else {
            ByteOrder::Abcd
        };
        return Ok(registers_of(&bytes, order));
    }
    if data_type == DataType::Bool {
        let bit = match value {
            Json::Bool(b) => *b,
            Json::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                n.as_u64() == Some(1)
            }
            _ => return Err("true, false, 0 or 1 is expected".to_string()),
        };
        return Ok(vec![u16::from(bit)]);
    }
    let number = value.as_f64().ok_or("a number is expected")?;
    let scale = tag.scale.map_or(1.0, |s| s.0);
    let offset = tag.offset.map_or(0.0, |o| o.0);
    let raw = (number - offset) / scale;
    if !raw.is_finite() {
        return Err("not a finite number".to_string());
    }
    let integer = |lo: f64, hi: f64| -> Result<i128, String> {
        let rounded = raw.round();
        if (raw - rounded).abs() > 1e-6 * raw.abs().max(1.0) {
            return Err(format!(
                "{number} is not a whole number of the {} raw unit",
                data_type.word()
            ));
        }
        match (lo..=hi).contains(&rounded) {
            true => Ok(rounded as i128),
            false => Err(format!("{number} is out of range for {}", data_type.word())),
        }
    };
    // Integers go through the JSON number itself when exact, so 64-bit
    // values keep every digit.
    let exact = tag.scale.is_none() && tag.offset.is_none();
    let bytes: Vec<u8> = match data_type {
        DataType::Int16 => (integer(-32768.0, 32767.0)? as i16).to_be_bytes().to_vec(),
        DataType::Uint16 => (integer(0.0, 65535.0)? as u16).to_be_bytes().to_vec(),
        DataType::Int32 => (integer(-2147483648.0, 2147483647.0)? as i32)
            .to_be_bytes()
            .to_vec(),
        DataType::Uint32 => (integer(0.0, 4294967295.0)? as u32).to_be_bytes().to_vec(),
        DataType::Int64 => match value.as_i64().filter(|_| exact) {
            Some(n) => n.to_be_bytes().to_vec(),
            None => (integer(-9.223372036854776e18, 9.223372036854775e18)? as i64)
                .to_be_bytes()
                .to_vec(),
        },
        DataType::Float32 => {
            if raw.abs() > f64::from(f32::MAX) {
                return Err(format!("{number} is out of range for float32"));
            }
            (raw as f32).to_be_bytes().to_vec()
        }
        DataType::Float64 => raw.to_be_bytes().to_vec(),
        DataType::Bool | DataType::String => return Err("not a number type".to_string()),
    };
    Ok(registers_of(&bytes, order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammar::config::{Decimal, Table};
    use proptest::prelude::*;

    fn tag(data_type: DataType, order: ByteOrder) -> Tag {
        Tag {
            source: Some((Table::HoldingRegister, 0)),
            data_type: Some(data_type),
            byte_order: Some(order),
            length: (data_type == DataType::String).then_some(4),
            ..Tag::default()
        }
    }

    #[test]
    fn every_type_decodes_in_every_order() {
        use ByteOrder::*;
        // 0x12345678 as the four orders put it on the wire.
        let wires = [
            (Abcd, [0x1234, 0x5678]),
            (Badc, [0x3412, 0x7856]),
            (Cdab, [0x5678, 0x1234]),
            (Dcba, [0x7856, 0x3412]),
        ];
        for (order, wire) in wires {
            assert_eq!(
                decode(&wire, DataType::Uint32, order),
                Some(Value::UInt(0x12345678)),
                "{order:?}"
            );
        }
        let pi = 3.5f32.to_bits();
        let (hi, lo) = ((pi >> 16) as u16, pi as u16);
        assert_eq!(
            decode(&[lo, hi], DataType::Float32, Cdab),
            Some(Value::Float(3.5))
        );
        let tenth = 0.1f32.to_bits();
        let (hi, lo) = ((tenth >> 16) as u16, tenth as u16);
        let shortest = decode(&[hi, lo], DataType::Float32, Abcd);
        assert_eq!(shortest, Some(Value::Float(0.1)), "not 0.10000000149011612");
        assert_eq!(
            decode(&[0xfffe], DataType::Int16, Abcd),
            Some(Value::Int(-2))
        );
        assert_eq!(
            decode(&[0xfeff], DataType::Int16, Badc),
            Some(Value::Int(-2))
        );
        assert_eq!(
            decode(&[0xfffe], DataType::Uint16, Abcd),
            Some(Value::UInt(65534))
        );
        assert_eq!(
            decode(&[0xffff, 0xfffe], DataType::Int32, Abcd),
            Some(Value::Int(-2))
        );
        let big = (-1_234_567_890_123i64).to_be_bytes();
        let words: Vec<u16> = big
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(
            decode(&words, DataType::Int64, Abcd),
            Some(Value::Int(-1_234_567_890_123))
        );
        let e = (-1234.5678f64).to_bits().to_be_bytes();
        let words: Vec<u16> = e
            .chunks(2)
            .rev()
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(
            decode(&words, DataType::Float64, Dcba),
            Some(Value::Float(-1234.5678))
        );
        assert_eq!(
            decode(&[0x4869, 0x2100], DataType::String, Abcd),
            Some(Value::Text("Hi!".into()))
        );
        assert_eq!(
            decode(&[0x6948, 0x0021], DataType::String, Badc),
            Some(Value::Text("Hi!".into()))
        );
        assert_eq!(decode(&[7], DataType::Bool, Abcd), Some(Value::Bool(true)));
        assert_eq!(
            decode(&[1], DataType::Uint32, Abcd),
            None,
            "too few registers"
        );
    }

    #[test]
    fn scale_offset_and_deadband() {
        let mut t = tag(DataType::Int16, ByteOrder::Abcd);
        assert_eq!(
            scaled(Value::Int(215), &t),
            Value::Int(215),
            "no scale: as read"
        );
        t.scale = Some(Decimal(0.1));
        t.offset = Some(Decimal(-40.0));
        let Value::Float(x) = scaled(Value::Int(615), &t) else {
            panic!()
        };
        assert!((x - 21.5).abs() < 1e-9);
        assert!(!Value::Float(21.5).changed(&Value::Float(21.2), 0.5));
        assert!(Value::Float(21.5).changed(&Value::Float(20.9), 0.5));
        assert!(Value::Bool(true).changed(&Value::Bool(false), 5.0));
        assert!(Value::Text("a".into()).changed(&Value::Text("b".into()), 0.0));
        assert!(Value::Float(f64::NAN).changed(&Value::Float(1.0), 0.0));
    }

    #[test]
    fn writes_are_checked_against_type_and_range() {
        let mut t = tag(DataType::Int16, ByteOrder::Abcd);
        assert_eq!(encode(&Json::from(-2), &t), Ok(vec![0xfffe]));
        assert!(encode(&Json::from(40000), &t)
            .unwrap_err()
            .contains("out of range"));
        assert!(encode(&Json::from(1.5), &t)
            .unwrap_err()
            .contains("whole number"));
        assert!(encode(&Json::from("x"), &t)
            .unwrap_err()
            .contains("number is expected"));
        t.scale = Some(Decimal(0.1));
        t.offset = Some(Decimal(-40.0));
        assert_eq!(encode(&Json::from(21.5), &t), Ok(vec![615]));
        let b = tag(DataType::Bool, ByteOrder::Abcd);
        assert_eq!(encode(&Json::from(true), &b), Ok(vec![1]));
        assert!(encode(&Json::from(2), &b).is_err());
        let s = tag(DataType::String, ByteOrder::Badc);
        assert_eq!(
            encode(&Json::from("Hi!"), &s),
            Ok(vec![0x6948, 0x0021, 0, 0])
        );
        assert!(encode(&Json::from("far too long"), &s).is_err());
        let big = tag(DataType::Int64, ByteOrder::Cdab);
        let words = encode(&Json::from(i64::MIN + 1), &big).unwrap();
        assert_eq!(
            decode(&words, DataType::Int64, ByteOrder::Cdab),
            Some(Value::Int(i64::MIN + 1))
        );
        let f = tag(DataType::Float32, ByteOrder::Dcba);
        assert!(encode(&Json::from(1e300), &f).is_err());
    }

    fn any_order() -> impl Strategy<Value = ByteOrder> {
        proptest::sample::select(ByteOrder::ALL.to_vec())
    }

    proptest! {
        /// Any registers decode without panicking, for every type and order.
        #[test]
        fn decoding_never_panics(registers in proptest::collection::vec(any::<u16>(), 0..8), order in any_order()) {
            for data_type in DataType::ALL {
                let _ = decode(&registers, data_type, order);
            }
        }

        /// What is written reads back, for every integer type and order.
        #[test]
        fn integers_round_trip(n in any::<i64>(), order in any_order()) {
            for (data_type, fits) in [
                (DataType::Int16, i64::from(n as i16) == n),
                (DataType::Uint16, (0..=65535).contains(&n)),
                (DataType::Int32, i64::from(n as i32) == n),
                (DataType::Uint32, (0..=u32::MAX as i64).contains(&n)),
                (DataType::Int64, true),
            ] {
                let written = encode(&Json::from(n), &tag(data_type, order));
                prop_assert_eq!(written.is_ok(), fits, "{:?} {}", data_type, n);
                if let Ok(words) = written {
                    let back = match decode(&words, data_type, order) {
                        Some(Value::Int(v)) => v,
                        Some(Value::UInt(v)) => v as i64,
                        other => panic!("{other:?}"),
                    };
                    prop_assert_eq!(back, n);
                }
            }
        }

        #[test]
        fn floats_round_trip(x in -1e30f64..1e30, order in any_order()) {
            let words = encode(&Json::from(x), &tag(DataType::Float64, order)).unwrap();
            prop_assert_eq!(decode(&words, DataType::Float64, order), Some(Value::Float(x)));
            let words = encode(&Json::from(x), &tag(DataType::Float32, order)).unwrap();
            prop_assert_eq!(decode(&words, DataType::Float32, order), Some(Value::Float(widened(x as f32))));
        }
    }
}
