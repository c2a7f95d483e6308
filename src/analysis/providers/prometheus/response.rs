//! Parsing Prometheus HTTP API answers (`/api/v1/query`, `/api/v1/query_range`). Pure.
//!
//! ```json
//! {"status":"success","data":{"resultType":"vector","result":[{"metric":{"le":"0.1"},"value":[1700000000.5,"12"]}]},
//!  "warnings":["..."]}
//! {"status":"error","errorType":"bad_data","error":"parse error ..."}
//! ```
//! Sample values are strings and may be `"NaN"`, `"+Inf"` or `"-Inf"`; parsing keeps them as f64 and
//! the caller decides (a count that is not finite is an error there).
//!
//! # Bounded as it reads
//!
//! The answer comes from a peer the operator does not trust, so the parse never builds a generic
//! JSON tree: typed visitors read the envelope, and the `result` list is counted while it is read.
//! The series past [`Limits::max_series`], the sample past [`Limits::max_points`], the label past
//! [`MAX_LABELS_PER_SERIES`] stop the parse at once with [`ProviderError::TooLarge`], whatever
//! follows in the body; warnings past [`MAX_WARNINGS`] are skipped without being kept. What one
//! answer can cost in memory is therefore a small multiple of its body, which the HTTP layer bounds
//! separately. Keys may come in any order (`result` before `resultType` too): each element of
//! `result` says by its own shape what it is.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::analysis::providers::ProviderError;
use crate::util::text::shorten_bytes;

/// Most labels one series may carry. The provider's own queries aggregate (`sum`, `sum by (le)`),
/// so their series carry none or one; a series of a user template keeps its target's labels,
/// rarely more than a dozen. Thirty-two keeps room for those and stops an answer made of tiny
/// labels (each costs ~100 bytes parsed for ~6 bytes of JSON) from growing twentyfold in memory.
pub const MAX_LABELS_PER_SERIES: usize = 32;

/// Most warnings kept from one answer; the rest are read past and dropped.
pub const MAX_WARNINGS: usize = 16;

/// Longest warning kept, in bytes.
const MAX_WARNING_BYTES: usize = 500;

/// One series of an answer: its labels and its points `(unix seconds, value)`. An instant vector has
/// one point per series; a matrix has many.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

/// A parsed successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `vector`, `matrix` or `scalar` (a scalar becomes one series without labels).
    pub result_type: String,
    pub series: Vec<Series>,
    pub warnings: Vec<String>,
}

/// Bounds on what one answer may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_series: usize,
    pub max_points: usize,
}

/// Parse a sample value as Prometheus writes it (`"1"`, `"0.25"`, `"NaN"`, `"+Inf"`, `"-Inf"`).
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => {
            // Reject Rust-only spellings ("inf", "infinity") that Prometheus never writes.
            if s.is_empty()
                || s.chars()
                    .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
            {
                return None;
            }
            s.parse::<f64>().ok()
        }
    }
}

/// If `body` is a Prometheus error answer, its `(errorType, error)`.
pub fn error_of(body: &[u8]) -> Option<(String, String)> {
    /// Only the fields an error answer needs; anything else (a `data` too) is read past.
    #[derive(Deserialize)]
    struct ErrorAnswer {
        status: String,
        #[serde(rename = "errorType")]
        error_type: Option<String>,
        error: Option<String>,
    }
    let e: ErrorAnswer = serde_json::from_slice(body).ok()?;
    if e.status != "error" {
        return None;
    }
    Some((
        e.error_type.unwrap_or_else(|| "unknown".into()),
        shorten_bytes(&e.error.unwrap_or_default(), 500),
    ))
}

/// Parse a 2xx answer body: the envelope (status, warnings), then the data's series, stopping at
/// the first series or sample over `limits`.
pub fn parse(body: &[u8], limits: Limits) -> Result<Answer, ProviderError> {
    parse_charged(body, limits, &mut |_| Ok(()))
}

/// [`parse`], telling `charge` about how many bytes of memory what it keeps takes so far (a
/// rough, generous estimate) each time that grows; an `Err(why)` from `charge` stops the parse
/// with [`ProviderError::Busy`]. The HTTP layer charges this to the process's budget.
pub fn parse_charged(
    body: &[u8],
    limits: Limits,
    charge: &mut dyn FnMut(usize) -> Result<(), String>,
) -> Result<Answer, ProviderError> {
    let tally = Tally {
        limits,
        series: Cell::new(0),
        points: Cell::new(0),
        scalar_parts: Cell::new(0),
        cost: Cell::new(0),
        charge: RefCell::new(charge),
        over: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope = EnvelopeSeed(&tally)
        .deserialize(&mut de)
        .and_then(|e| de.end().map(|()| e));
    match envelope {
        Ok(e) => e.answer(),
        // A bound hit inside the visitors is the real reason, not the error serde made of it.
        Err(e) => Err(tally.over.take().unwrap_or_else(|| {
            ProviderError::Malformed(if e.is_syntax() || e.is_eof() {
                format!(
                    "not JSON ({e}): {}",
                    shorten_bytes(&String::from_utf8_lossy(&body[..body.len().min(200)]), 200)
                )
            } else {
                e.to_string()
            })
        })),
    }
}

/// How much of the limits the answer has used so far, and which bound it went over.
struct Tally<'c> {
    limits: Limits,
    series: Cell<usize>,
    points: Cell<usize>,
    scalar_parts: Cell<usize>,
    /// Estimated bytes of memory kept so far.
    cost: Cell<usize>,
    charge: RefCell<&'c mut dyn FnMut(usize) -> Result<(), String>>,
    over: RefCell<Option<ProviderError>>,
}

/// Estimated bytes one kept series costs besides its labels and points (the series, its list
/// entry and allocator rounding), and one label besides its text (its map entry).
const SERIES_COST: usize = 128;
const LABEL_COST: usize = 64;
/// A point is two f64; the list it is in may have twice the room it uses.
const POINT_COST: usize = 32;

impl Tally<'_> {
    fn too_large<E: de::Error>(&self, why: String) -> E {
        let e = E::custom(&why);
        *self.over.borrow_mut() = Some(ProviderError::TooLarge(why));
        e
    }

    fn add_cost<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let cost = self.cost.get().saturating_add(bytes);
        self.cost.set(cost);
        let charged = (self.charge.borrow_mut())(cost);
        charged.map_err(|why| {
            let e = E::custom(&why);
            *self.over.borrow_mut() = Some(ProviderError::Busy(why));
            e
        })
    }

    fn add_series<E: de::Error>(&self) -> Result<(), E> {
        let n = self.series.get() + 1;
        self.series.set(n);
        if n > self.limits.max_series {
            return Err(self.too_large(format!(
                "more than the limit of {} series",
                self.limits.max_series
            )));
        }
        self.add_cost(SERIES_COST)
    }

    /// A scalar result is `[time, "value"]`: a third bare element is not a Prometheus answer,
    /// and is refused before a list of them can grow.
    fn add_scalar_part<E: de::Error>(&self) -> Result<(), E> {
        let n = self.scalar_parts.get() + 1;
        self.scalar_parts.set(n);
        if n > 2 {
            return Err(E::custom(
                "result holds more than a scalar's time and value",
            ));
        }
        Ok(())
    }

    fn add_point<E: de::Error>(&self) -> Result<(), E> {
        let n = self.points.get() + 1;
        self.points.set(n);
        if n > self.limits.max_points {
            return Err(self.too_large(format!(
                "more than the limit of {} samples",
                self.limits.max_points
            )));
        }
        self.add_cost(POINT_COST)
    }
}

/// The top-level object, as read.
#[derive(Default)]
struct Envelope {
    status: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
    warnings: Vec<String>,
    /// `None` when there is no `data`; inside, `None` where a field was missing.
    data: Option<Data>,
}

#[derive(Default)]
struct Data {
    result_type: Option<String>,
    result: Option<Vec<Element>>,
}

/// One element of `result`: a series (an object) for vectors and matrices, or one half of a
/// scalar's `[time, "value"]`.
enum Element {
    Series(RawSeries),
    Time(f64),
    Text(String),
}

struct RawSeries {
    labels: BTreeMap<String, String>,
    value: Option<(f64, f64)>,
    values: Option<Vec<(f64, f64)>>,
}

impl Envelope {
    fn answer(self) -> Result<Answer, ProviderError> {
        let status = self
            .status
            .ok_or_else(|| ProviderError::Malformed("no status field".into()))?;
        if status == "error" {
            return Err(ProviderError::Query {
                error_type: self.error_type.unwrap_or_else(|| "unknown".into()),
                message: shorten_bytes(&self.error.unwrap_or_default(), 500),
            });
        }
        if status != "success" {
            return Err(ProviderError::Malformed(format!(
                "unknown status {:?}",
                shorten_bytes(&status, 100)
            )));
        }
        let data = self
            .data
            .ok_or_else(|| ProviderError::Malformed("success without data".into()))?;
        let result_type = data
            .result_type
            .ok_or_else(|| ProviderError::Malformed("data without resultType".into()))?;
        let result = data
            .result
            .ok_or_else(|| ProviderError::Malformed("data without result".into()))?;
        let series = series(&result_type, result)?;
        Ok(Answer {
            result_type,
            series,
            warnings: self.warnings,
        })
    }
}

/// The series of a `result` of `result_type` (a scalar is one series without labels).
fn series(result_type: &str, result: Vec<Element>) -> Result<Vec<Series>, ProviderError> {
    match result_type {
        "scalar" => match result.as_slice() {
            [Element::Time(t), Element::Text(raw)] => Ok(vec![Series {
                labels: BTreeMap::new(),
                points: vec![(*t, sample_value(raw)?)],
            }]),
            _ => Err(ProviderError::Malformed(
                "scalar result is not [time, \"value\"]".into(),
            )),
        },
        "vector" | "matrix" => result
            .into_iter()
            .map(|element| {
                let Element::Series(s) = element else {
                    return Err(ProviderError::Malformed(format!(
                        "{result_type} result holds something that is not a series object"
                    )));
                };
                let points = if result_type == "vector" {
                    vec![s.value.ok_or_else(|| {
                        ProviderError::Malformed("vector sample without value".into())
                    })?]
                } else {
                    s.values.ok_or_else(|| {
                        ProviderError::Malformed("matrix series without values".into())
                    })?
                };
                Ok(Series {
                    labels: s.labels,
                    points,
                })
            })
            .collect(),
        other => Err(ProviderError::UnexpectedResultType {
            what: "query".into(),
            got: format!("a {} result", shorten_bytes(other, 50)),
        }),
    }
}

fn sample_value(raw: &str) -> Result<f64, ProviderError> {
    parse_value(raw).ok_or_else(|| {
        ProviderError::Malformed(format!(
            "sample value {:?} is not a number",
            shorten_bytes(raw, 50)
        ))
    })
}

/// Reads the top-level object.
struct EnvelopeSeed<'t, 'c>(&'t Tally<'c>);

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_, '_> {
    type Value = Envelope;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_, '_> {
    type Value = Envelope;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Prometheus API answer (an object with status and data)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut e = Envelope::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key.0.as_str() {
                "status" => e.status = Some(map.next_value_seed(Text("status"))?),
                "errorType" => e.error_type = Some(map.next_value_seed(Text("errorType"))?),
                "error" => e.error = Some(map.next_value_seed(Text("error"))?),
                "warnings" => e.warnings = map.next_value::<Warnings>()?.0,
                "data" => e.data = map.next_value_seed(DataSeed(self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(e)
    }
}

/// An object key (keys are short in real answers; a long one costs only its own bytes).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Key)
    }
}

/// A string field, whose name the error says when it is something else.
struct Text(&'static str);

impl<'de> DeserializeSeed<'de> for Text {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Text {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} as a string", self.0)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        Ok(s.to_string())
    }
}

/// `warnings`: a list (or null) of which the first [`MAX_WARNINGS`] are kept, shortened; a
/// warning that is not a string is kept as its JSON kind.
struct Warnings(Vec<String>);

impl<'de> Deserialize<'de> for Warnings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("warnings as a list of strings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
                Ok(Vec::new())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
                let mut kept = Vec::new();
                while kept.len() < MAX_WARNINGS {
                    match seq.next_element::<Warning>()? {
                        Some(w) => kept.push(w.0),
                        None => return Ok(kept),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(kept)
            }
        }
        d.deserialize_any(V).map(Warnings)
    }
}

struct Warning(String);

impl<'de> Deserialize<'de> for Warning {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a warning")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
                Ok(shorten_bytes(s, MAX_WARNING_BYTES))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<String, E> {
                Ok(b.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
                Ok(n.to_string())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<String, E> {
                Ok(n.to_string())
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<String, E> {
                Ok(n.to_string())
            }
            fn visit_unit<E: de::Error>(self) -> Result<String, E> {
                Ok("null".into())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok("(a warning that is a list, not text)".into())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok("(a warning that is an object, not text)".into())
            }
        }
        d.deserialize_any(V).map(Warning)
    }
}

/// `data`: `resultType` and `result`, in either order.
struct DataSeed<'t, 'c>(&'t Tally<'c>);

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_> {
    type Value = Option<Data>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Data>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_> {
    type Value = Option<Data>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("data as an object with resultType and result")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Data>, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Data>, A::Error> {
        let mut data = Data::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key.0.as_str() {
                "resultType" => data.result_type = Some(map.next_value_seed(Text("resultType"))?),
                "result" => data.result = Some(map.next_value_seed(ResultSeed(self.0))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(data))
    }
}

/// `result`: a list, counted element by element against the series limit.
struct ResultSeed<'t, 'c>(&'t Tally<'c>);

impl<'de> DeserializeSeed<'de> for ResultSeed<'_, '_> {
    type Value = Vec<Element>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Element>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ResultSeed<'_, '_> {
    type Value = Vec<Element>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("result as a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Element>, A::Error> {
        let mut out = Vec::new();
        while let Some(element) = seq.next_element_seed(ElementSeed(self.0))? {
            out.push(element);
        }
        Ok(out)
    }
}

struct ElementSeed<'t, 'c>(&'t Tally<'c>);

impl<'de> DeserializeSeed<'de> for ElementSeed<'_, '_> {
    type Value = Element;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Element, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_, '_> {
    type Value = Element;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a series object (or a scalar's time and value)")
    }
    fn visit_f64<E: de::Error>(self, t: f64) -> Result<Element, E> {
        self.0.add_scalar_part()?;
        Ok(Element::Time(t))
    }
    fn visit_i64<E: de::Error>(self, t: i64) -> Result<Element, E> {
        self.visit_f64(t as f64)
    }
    fn visit_u64<E: de::Error>(self, t: u64) -> Result<Element, E> {
        self.visit_f64(t as f64)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Element, E> {
        self.0.add_scalar_part()?;
        Ok(Element::Text(s.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        self.0.add_series()?;
        let mut s = RawSeries {
            labels: BTreeMap::new(),
            value: None,
            values: None,
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key.0.as_str() {
                "metric" => s.labels = map.next_value_seed(LabelsSeed(self.0))?,
                "value" => {
                    self.0.add_point()?;
                    s.value = Some(map.next_value::<Sample>()?.pair()?);
                }
                "values" => s.values = Some(map.next_value_seed(SamplesSeed(self.0))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Element::Series(s))
    }
}

/// A series' `metric` object (or null): at most [`MAX_LABELS_PER_SERIES`] labels, every value a
/// string.
struct LabelsSeed<'t, 'c>(&'t Tally<'c>);

impl<'de> DeserializeSeed<'de> for LabelsSeed<'_, '_> {
    type Value = BTreeMap<String, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LabelsSeed<'_, '_> {
    type Value = BTreeMap<String, String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("metric as an object of string labels")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut labels = BTreeMap::new();
        while let Some(name) = map.next_key::<Key>()? {
            if labels.len() == MAX_LABELS_PER_SERIES {
                return Err(de::Error::custom(format!(
                    "a series with more than {MAX_LABELS_PER_SERIES} labels"
                )));
            }
            let value = map.next_value_seed(Text("a label value")).map_err(|_| {
                de::Error::custom(format!(
                    "label {:?} is not a string",
                    shorten_bytes(&name.0, 50)
                ))
            })?;
            self.0.add_cost(LABEL_COST + name.0.len() + value.len())?;
            labels.insert(name.0, value);
        }
        Ok(labels)
    }
}

/// One sample, `[unix time, "value"]`.
struct Sample(f64, String);

impl Sample {
    fn pair<E: de::Error>(self) -> Result<(f64, f64), E> {
        let value = parse_value(&self.1).ok_or_else(|| {
            E::custom(format!(
                "sample value {:?} is not a number",
                shorten_bytes(&self.1, 50)
            ))
        })?;
        Ok((self.0, value))
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sample;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sample [time, \"value\"]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sample, A::Error> {
                let t = seq
                    .next_element::<SampleTime>()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let v = seq
                    .next_element_seed(Text("a sample value"))?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(Sample(t.0, v))
            }
        }
        d.deserialize_seq(V)
    }
}

struct SampleTime(f64);

impl<'de> Deserialize<'de> for SampleTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sample time (a number of seconds)")
            }
            fn visit_f64<E: de::Error>(self, t: f64) -> Result<f64, E> {
                Ok(t)
            }
            fn visit_i64<E: de::Error>(self, t: i64) -> Result<f64, E> {
                Ok(t as f64)
            }
            fn visit_u64<E: de::Error>(self, t: u64) -> Result<f64, E> {
                Ok(t as f64)
            }
        }
        d.deserialize_f64(V).map(SampleTime)
    }
}

/// A matrix series' `values`, each sample counted against the limit before it is read.
struct SamplesSeed<'t, 'c>(&'t Tally<'c>);

impl<'de> DeserializeSeed<'de> for SamplesSeed<'_, '_> {
    type Value = Vec<(f64, f64)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SamplesSeed<'_, '_> {
    type Value = Vec<(f64, f64)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("values as a list of samples")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(sample) = seq.next_element::<Sample>()? {
            self.0.add_point()?;
            out.push(sample.pair()?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_series: 100,
        max_points: 1000,
    };

    #[test]
    fn parses_values_including_nan_and_infinities() {
        assert_eq!(parse_value("1"), Some(1.0));
        assert_eq!(parse_value("0.25"), Some(0.25));
        assert_eq!(parse_value("1e3"), Some(1000.0));
        assert_eq!(parse_value("-2.5E-1"), Some(-0.25));
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("inf"), None);
        assert_eq!(parse_value(""), None);
        assert_eq!(parse_value("12abc"), None);
    }

    #[test]
    fn parses_a_vector_with_warnings() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"le":"0.1"},"value":[1700000000.5,"12"]},
            {"metric":{"le":"+Inf"},"value":[1700000000.5,"NaN"]}]},
            "warnings":["partial response: store down"]}"#;
        let a = parse(body, L).unwrap();
        assert_eq!(a.result_type, "vector");
        assert_eq!(a.series.len(), 2);
        assert_eq!(a.series[0].labels["le"], "0.1");
        assert_eq!(a.series[0].points, vec![(1700000000.5, 12.0)]);
        assert!(a.series[1].points[0].1.is_nan());
        assert_eq!(a.warnings, vec!["partial response: store down".to_string()]);
    }

    #[test]
    fn parses_an_empty_vector_a_matrix_and_a_scalar() {
        let a = parse(
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            L,
        )
        .unwrap();
        assert!(a.series.is_empty());
        let a = parse(
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"+Inf"]]}]}}"#,
            L,
        )
        .unwrap();
        assert_eq!(a.series[0].points, vec![(1.0, 1.0), (2.0, f64::INFINITY)]);
        let a = parse(
            br#"{"status":"success","data":{"resultType":"scalar","result":[3,"-Inf"]}}"#,
            L,
        )
        .unwrap();
        assert_eq!(a.series[0].points, vec![(3.0, f64::NEG_INFINITY)]);
        let e = parse(
            br#"{"status":"success","data":{"resultType":"string","result":[3,"x"]}}"#,
            L,
        )
        .unwrap_err();
        assert!(
            matches!(e, ProviderError::UnexpectedResultType { .. }),
            "{e:?}"
        );
    }

    #[test]
    fn prometheus_errors_are_typed() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \"}\""}"#;
        let e = parse(body, L).unwrap_err();
        match &e {
            ProviderError::Query {
                error_type,
                message,
            } => {
                assert_eq!(error_type, "bad_data");
                assert!(message.contains("parse error"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.is_transient());
        let e = parse(
            br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#,
            L,
        )
        .unwrap_err();
        assert!(e.is_transient());
        assert_eq!(
            error_of(br#"{"status":"error","errorType":"unavailable","error":"x"}"#)
                .unwrap()
                .0,
            "unavailable"
        );
        assert_eq!(error_of(b"<html>"), None);
    }

    #[test]
    fn garbage_is_malformed() {
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"{}",
            b"{\"status\":\"success\"}",
            b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}",
            b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1,2]}]}}",
            b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1,\"abc\"]}]}}",
            b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"a\":1},\"value\":[1,\"1\"]}]}}",
            b"{\"status\":\"maybe\"}",
            b"\xff\xfe garbage",
        ] {
            let e = parse(body, L).unwrap_err();
            assert!(matches!(e, ProviderError::Malformed(_)), "{:?} -> {e:?}", String::from_utf8_lossy(body));
            assert!(e.is_transient());
        }
    }

    #[test]
    fn bounds_series_and_points() {
        let items: Vec<String> = (0..5)
            .map(|i| format!(r#"{{"metric":{{"i":"{i}"}},"value":[1,"1"]}}"#))
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            items.join(",")
        );
        let small = Limits {
            max_series: 4,
            max_points: 1000,
        };
        assert!(matches!(
            parse(body.as_bytes(), small),
            Err(ProviderError::TooLarge(_))
        ));
        let few_points = Limits {
            max_series: 10,
            max_points: 3,
        };
        assert!(matches!(
            parse(body.as_bytes(), few_points),
            Err(ProviderError::TooLarge(_))
        ));
        assert_eq!(parse(body.as_bytes(), L).unwrap().series.len(), 5);
    }

    fn vector_of(n: usize) -> String {
        let items: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"metric":{{"le":"{i}"}},"value":[1,"1"]}}"#))
            .collect();
        items.join(",")
    }

    /// The parse stops at the first series or sample over the limit: what follows is never read,
    /// so a body that goes on for megabytes (here: turns into garbage) costs no more than the
    /// limit.
    #[test]
    fn limits_stop_the_parse_mid_stream() {
        let limits = Limits {
            max_series: 4,
            max_points: 1000,
        };
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{},{{"metric":"#,
            vector_of(4)
        ) + &"\u{1}garbage".repeat(1000);
        match parse(body.as_bytes(), limits) {
            Err(ProviderError::TooLarge(m)) => assert!(m.contains("4 series"), "{m}"),
            other => panic!("{other:?}"),
        }
        let samples: Vec<String> = (0..11).map(|i| format!(r#"[{i},"1"]"#)).collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{},"#,
            samples.join(",")
        ) + &"]]]]".repeat(1000);
        let limits = Limits {
            max_series: 4,
            max_points: 10,
        };
        match parse(body.as_bytes(), limits) {
            Err(ProviderError::TooLarge(m)) => assert!(m.contains("10 samples"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Points are counted across series, not per series.
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            vector_of(11)
        );
        let e = parse(
            body.as_bytes(),
            Limits {
                max_series: 100,
                max_points: 10,
            },
        )
        .unwrap_err();
        assert!(matches!(e, ProviderError::TooLarge(_)), "{e:?}");
        // A series made of labels is bounded too.
        let labels: Vec<String> = (0..=MAX_LABELS_PER_SERIES)
            .map(|i| format!(r#""l{i}":"v""#))
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{{}}},"value":[1,"1"]}}]}}}}"#,
            labels.join(",")
        );
        let e = parse(body.as_bytes(), L).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("more than {MAX_LABELS_PER_SERIES} labels")),
            "{e}"
        );
        // Bare elements cannot pile up in a result either.
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"scalar","result":[1,"1",{}]}}}}"#,
            vec!["\"x\""; 10_000].join(",")
        );
        let e = parse(body.as_bytes(), L).unwrap_err();
        assert!(e.to_string().contains("more than a scalar"), "{e}");
    }

    #[test]
    fn warnings_past_the_first_few_are_dropped_and_long_ones_shortened() {
        let many: Vec<String> = (0..1000).map(|i| format!(r#""w{i}""#)).collect();
        let body = format!(
            r#"{{"status":"success","warnings":[{},"{}"],"data":{{"resultType":"vector","result":[]}}}}"#,
            many.join(","),
            "x".repeat(10_000)
        );
        let a = parse(body.as_bytes(), L).unwrap();
        assert_eq!(a.warnings.len(), MAX_WARNINGS);
        assert_eq!(a.warnings[0], "w0");
        let long = format!(
            r#"{{"status":"success","warnings":[1,{{"a":[1]}},"{}"],"data":{{"resultType":"vector","result":[]}}}}"#,
            "x".repeat(10_000)
        );
        let a = parse(long.as_bytes(), L).unwrap();
        assert_eq!(a.warnings.len(), 3);
        assert!(
            a.warnings[2].len() <= MAX_WARNING_BYTES + 4,
            "{}",
            a.warnings[2].len()
        );
    }

    /// Keys in any order, unknown keys ignored.
    #[test]
    fn key_order_does_not_matter() {
        let body = br#"{"data":{"result":[{"values":[[1,"2"],[2,"3"]],"extra":{"x":[1]},"metric":{"le":"0.5"}}],"resultType":"matrix"},"status":"success","infos":["x"]}"#;
        let a = parse(body, L).unwrap();
        assert_eq!(a.result_type, "matrix");
        assert_eq!(a.series[0].labels["le"], "0.5");
        assert_eq!(a.series[0].points, vec![(1.0, 2.0), (2.0, 3.0)]);
    }

    /// What the parse keeps is charged as it grows, and a refused charge stops it as `Busy`.
    #[test]
    fn what_the_parse_keeps_is_charged_as_it_grows() {
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            vector_of(50)
        );
        let mut charged = Vec::new();
        let a = parse_charged(body.as_bytes(), L, &mut |bytes| {
            charged.push(bytes);
            Ok(())
        })
        .unwrap();
        assert_eq!(a.series.len(), 50);
        assert!(charged.windows(2).all(|w| w[0] < w[1]), "{charged:?}");
        let total = *charged.last().unwrap();
        assert!(
            total >= 50 * (SERIES_COST + LABEL_COST + POINT_COST),
            "{total}"
        );
        let mut calls = 0;
        let e = parse_charged(body.as_bytes(), L, &mut |bytes| {
            calls += 1;
            if bytes > 1000 {
                Err("budget used up".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(
            matches!(&e, ProviderError::Busy(m) if m == "budget used up"),
            "{e:?}"
        );
        assert!(
            calls < 20,
            "stopped at the first refusal, after {calls} charges"
        );
    }

    /// Each wrong shape is refused with words that say which part is wrong.
    #[test]
    fn malformed_shapes_say_what_is_wrong() {
        let cases: [(&[u8], &str); 12] = [
            (br#"{"status":1}"#, "status as a string"),
            (br#"{"status":"success","data":[]}"#, "data as an object"),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
                "result as a list",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[[1,"1"]]}}"#,
                "a series object",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}}"#,
                "a sample value as a string",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[{"value":["1","2"]}]}}"#,
                "a sample time",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"2",3]}]}}"#,
                "invalid length",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"many"]}]}}"#,
                "\"many\" is not a number",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"1"]}]}}"#,
                "label \"a\" is not a string",
            ),
            (
                br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}"#,
                "vector sample without value",
            ),
            (
                br#"{"status":"success","data":{"resultType":"scalar","result":[1]}}"#,
                "scalar result",
            ),
            (br#"{"status":"success"} trailing"#, "trailing"),
        ];
        for (body, words) in cases {
            let e = parse(body, L).unwrap_err();
            assert!(
                matches!(e, ProviderError::Malformed(_)) && e.to_string().contains(words),
                "{} -> {e}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// The seed corpus of the fuzz target (real answers' shapes) still reads as it did.
    #[test]
    fn the_fuzz_seed_answers_still_parse() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/corpus/prometheus_response"
        );
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("the fuzz corpus") {
            let body = std::fs::read(entry.expect("entry").path()).expect("read");
            match parse(&body, L) {
                Ok(a) => assert!(!a.result_type.is_empty()),
                Err(ProviderError::Query { error_type, .. }) => assert_eq!(error_type, "bad_data"),
                Err(e) => panic!("{}: {e}", String::from_utf8_lossy(&body)),
            }
            seen += 1;
        }
        assert!(seen >= 5, "{seen} seeds");
    }
}
