//! `#[derive(SessionData)]` for
//! [sealed-session](https://docs.rs/sealed-session): typed sessions.
//!
//! Use it through `sealed-session` (feature `derive`, on by default), which
//! re-exports it as `sealed_session::SessionData`.
//!
//! The derive works in three steps, one file each: `parse` the input into
//! a model that keeps the syntax for error spans, `validate` the rules
//! that span fields, `generate` the code.

mod generate;
mod parse;
mod validate;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `SessionData` for a struct with named fields: record mapping,
/// typed accessors with change tracking, typed flash, and guard markers.
///
/// # Examples
///
/// ```
/// use sealed_session::{Required, Session, SessionData};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(SessionData, Default, Serialize, Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// pub struct MySession {
///     #[session(required)]
///     user_id: Option<String>,
///     cart: Vec<u64>,
/// }
///
/// let session = Session::<MySession>::detached();
/// assert_eq!(session.user_id(), None);
/// session.set_user_id(Some("42".to_owned()));
/// session.flash_cart(vec![7]);
/// assert_eq!(session.take_cart(), [7]);
///
/// let user = Required::<MySession, UserId>::from_session(session.clone()).unwrap();
/// assert_eq!(*user, "42");
/// ```
///
/// # What it generates
///
/// For the struct above (paths shortened; the real expansion goes through
/// the hidden module `sealed_session::__private`):
///
/// ```text
/// /// Typed accessors of MySession: what Session<MySession> dereferences to.
/// pub struct MySessionAccessors { handle: Handle<MySession> }
///
/// /// Names the field MySession::user_id for the guard Required<MySession, UserId>.
/// pub enum UserId {}
///
/// const _: () = {
///     impl SessionData for MySession {
///         type Accessors = MySessionAccessors;
///         const TRACKED_KEYS: &[&str] = &["userId", "cart"];
///         fn from_record(record) -> Result<Self>;   // field by field, absent = Default
///         fn to_record(&self) -> Result<Record>;    // field by field, empty values left out
///         fn tracked_value(&self, index) -> Result<Value>;
///     }
///     impl SessionAccessors<MySession> for MySessionAccessors { .. }
///     impl Debug for MySessionAccessors { .. }
///     impl MySessionAccessors {
///         pub fn user_id(&self) -> Option<String>;          // a clone
///         pub fn set_user_id(&self, value: Option<String>); // equal value: no change
///         pub fn take_user_id(&self) -> Option<String>;     // back to the default
///         pub fn flash_user_id(&self, value: Option<String>);
///         pub fn cart(&self) -> Vec<u64>;
///         pub fn set_cart(&self, value: Vec<u64>);
///         pub fn take_cart(&self) -> Vec<u64>;
///         pub fn flash_cart(&self, value: Vec<u64>);
///     }
///     impl RequiredField<MySession> for UserId {
///         type Value = String;
///         const KEY: &str = "userId";
///         fn get(data: &MySession) -> Option<String>;
///     }
/// };
/// ```
///
/// `Session<MySession>` dereferences to `MySessionAccessors`, so
/// `session.user_id()` works with no trait to import.
///
/// # Record mapping
///
/// Each field is one key of the session record, its value written and read
/// with serde (the field's type must implement `Serialize` and
/// `Deserialize`; the struct itself need not). A field absent from the
/// record, or `null`, `[]` or `{}` there (hono-session never writes those),
/// keeps its value from the struct's `Default`.
///
/// The key is the field's name, unless renamed by `#[session(rename =
/// "...")]`, `#[serde(rename = "...")]`, or `rename_all` on the struct
/// (`#[session(rename_all = "camelCase")]` or serde's). `#[serde(alias)]`,
/// `#[serde(default)]`, `#[serde(skip)]` and `#[serde(with)]` (or
/// `serialize_with`/`deserialize_with`) are honoured too, so a struct that
/// also derives serde's traits maps the same way.
///
/// # Attributes
///
/// On the struct:
///
/// | Attribute | Effect |
/// | --- | --- |
/// | `#[session(rename_all = "camelCase")]` | rename every field (serde's rules) |
/// | `#[session(accessors = "Name")]` | name the accessors type (default `<Struct>Accessors`) |
///
/// On a field:
///
/// | Attribute | Effect |
/// | --- | --- |
/// | `#[session(rename = "key")]` | the field's record key |
/// | `#[session(default)]`, `#[session(default = "path")]` | value when absent: `Default::default()` of the field's type, or `path()` (instead of the struct's `Default`) |
/// | `#[session(required)]`, `#[session(required = "Marker")]` | on an `Option` field: generate a marker type (default: the field's name in PascalCase) for the guard `Required<Struct, Marker>` |
/// | `#[session(accessor = "name")]` | name the methods `name()`, `set_name()`, ... |
/// | `#[session(skip)]` | not stored, no accessors |
///
/// # Compile errors
///
/// An enum, a tuple struct, an unknown `#[session(...)]` key, two fields
/// with one record key, a field whose key is reserved (`_expires`,
/// `_flashKeys`), an accessor hidden by a method of `Session` (a field
/// named `id`, say: rename it with `accessor`), `required` on a field that
/// is not an `Option`, and a field type that is not a serde type.
#[proc_macro_derive(SessionData, attributes(session, serde))]
pub fn derive_session_data(input: TokenStream) -> TokenStream {
    let node = parse_macro_input!(input as DeriveInput);
    expand(&node).into()
}

fn expand(node: &DeriveInput) -> proc_macro2::TokenStream {
    let mut errors = parse::Errors::default();
    let Some(input) = parse::parse(node, &mut errors) else {
        return stub_for(node, errors);
    };
    let model = validate::validate(&input, &mut errors);
    match errors.finish() {
        Ok(()) => generate::generate(&model),
        Err(errors) => generate::stub(node, &errors),
    }
}

fn stub_for(node: &DeriveInput, errors: parse::Errors) -> proc_macro2::TokenStream {
    match errors.finish() {
        Ok(()) => generate::stub(
            node,
            &syn::Error::new_spanned(node, "#[derive(SessionData)] could not read this item"),
        ),
        Err(errors) => generate::stub(node, &errors),
    }
}
