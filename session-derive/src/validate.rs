//! Step 2: the rules that span fields (record keys, method names, markers),
//! turning the parsed input into the model code is generated from.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident};
use syn::{GenericArgument, GenericParam, Ident, PathArguments, Type};

use crate::parse::{DefaultValue, Errors, Field, Input, RenameRule};

/// Methods `Session<T>` has itself: an accessor of the same name would be
/// hidden behind them.
const SESSION_METHODS: &[&str] = &[
    "clone",
    "deref",
    "destroy",
    "detached",
    "expires_at",
    "flash_with",
    "has_changed",
    "id",
    "is_destroyed",
    "is_new",
    "read",
    "reflash",
    "regenerate",
    "renew",
    "renew_for",
    "replace",
    "update",
];

/// Record keys the engine owns.
const RESERVED_KEYS: &[(&str, &str)] = &[
    ("_expires", "the session's expiry"),
    ("_flashKeys", "the flashed fields"),
];

/// What is generated from.
pub(crate) struct Model<'a> {
    pub(crate) input: &'a Input<'a>,
    /// The accessors type's name.
    pub(crate) accessors: Ident,
    /// The stored fields, in order (`index` is their tracking bit).
    pub(crate) fields: Vec<ModelField<'a>>,
}

/// A stored field.
pub(crate) struct ModelField<'a> {
    pub(crate) field: &'a Field<'a>,
    pub(crate) index: usize,
    pub(crate) key: String,
    pub(crate) getter: Ident,
    pub(crate) setter: Ident,
    pub(crate) taker: Ident,
    pub(crate) flasher: Ident,
    /// The marker type and the value type inside the `Option`.
    pub(crate) required: Option<(Ident, &'a Type)>,
    /// The field's default when absent: `None` for the struct's `Default`.
    pub(crate) default: Option<&'a DefaultValue>,
}

pub(crate) fn validate<'a>(input: &'a Input<'a>, errors: &mut Errors) -> Model<'a> {
    for param in &input.node.generics.params {
        if let GenericParam::Lifetime(lifetime) = param {
            errors.at(
                lifetime,
                "#[derive(SessionData)] does not support lifetime parameters: session data is owned ('static)",
            );
        }
    }
    let accessors = input.accessors.as_ref().map_or_else(
        || format_ident!("{}Accessors", input.node.ident),
        |a| a.value.clone(),
    );

    let mut fields = Vec::new();
    for field in &input.fields {
        for (tokens, message) in &field.unsupported {
            errors.at(tokens, message);
        }
        if field.skip.is_some() {
            if let Some(required) = &field.required {
                errors.at(
                    &required.tokens,
                    "#[session(required)] on a skipped field: a skipped field is never stored, so it is never set",
                );
            }
            continue;
        }
        fields.push(model_field(input, field, fields.len(), errors));
    }

    check_keys(&fields, errors);
    check_methods(&fields, &accessors, errors);
    Model {
        input,
        accessors,
        fields,
    }
}

fn model_field<'a>(
    input: &Input<'_>,
    field: &'a Field<'a>,
    index: usize,
    errors: &mut Errors,
) -> ModelField<'a> {
    let name = field.name();
    let key = if let Some(rename) = &field.rename {
        if let Some(serde) = &field.serde_rename
            && serde.value != rename.value
        {
            errors.at(
                &rename.tokens,
                format!(
                    "#[session(rename = \"{}\")] disagrees with #[serde(rename = \"{}\")]: keep one of them",
                    rename.value, serde.value
                ),
            );
        }
        rename.value.clone()
    } else if let Some(serde) = &field.serde_rename {
        serde.value.clone()
    } else {
        input
            .rename_all
            .as_ref()
            .map_or_else(|| name.clone(), |rule| rule.value.apply(&name))
    };

    let base = field
        .accessor
        .as_ref()
        .map_or_else(|| name.clone(), |a| a.value.to_string());
    let base = base.strip_prefix("r#").unwrap_or(&base).to_owned();
    let getter = field
        .accessor
        .as_ref()
        .map_or_else(|| field.ident.clone(), |a| a.value.clone());
    let span = field
        .accessor
        .as_ref()
        .map_or_else(|| field.span(), |a| a.value.span());

    let required = field.required.as_ref().and_then(|required| {
        let Some(inner) = option_inner(field.ty) else {
            errors.at(
                &required.tokens,
                "#[session(required)] needs an `Option<_>` field: the guard hands the handler the value inside the `Option`",
            );
            return None;
        };
        let marker = required.value.clone().unwrap_or_else(|| {
            Ident::new(&RenameRule::Pascal.apply(&name), field.span())
        });
        Some((marker, inner))
    });

    ModelField {
        field,
        index,
        key,
        getter,
        setter: format_ident!("set_{}", base, span = span),
        taker: format_ident!("take_{}", base, span = span),
        flasher: format_ident!("flash_{}", base, span = span),
        required,
        default: field.default.as_ref().map(|d| &d.value),
    }
}

/// What a field's record key error points at: its rename, else its name.
fn key_tokens(field: &ModelField<'_>) -> TokenStream {
    let f = field.field;
    f.rename
        .as_ref()
        .or(f.serde_rename.as_ref())
        .map_or_else(|| f.ident.to_token_stream(), |r| r.tokens.clone())
}

fn check_keys(fields: &[ModelField<'_>], errors: &mut Errors) {
    let mut seen: BTreeMap<&str, &Ident> = BTreeMap::new();
    for field in fields {
        let keys = std::iter::once((field.key.as_str(), key_tokens(field))).chain(
            field
                .field
                .aliases
                .iter()
                .map(|a| (a.value.as_str(), a.tokens.clone())),
        );
        for (key, tokens) in keys {
            if let Some((_, what)) = RESERVED_KEYS.iter().find(|(k, _)| *k == key) {
                errors.at(
                    &tokens,
                    format!(
                        "record key `{key}` is reserved by sealed-session ({what}): rename the field with #[session(rename = \"...\")]"
                    ),
                );
                continue;
            }
            if let Some(first) = seen.get(key) {
                errors.at(
                    &tokens,
                    format!(
                        "duplicate record key `{key}`: fields `{first}` and `{}` both map to it",
                        field.field.ident
                    ),
                );
                continue;
            }
            seen.insert(key, field.field.ident);
        }
    }
}

fn check_methods(fields: &[ModelField<'_>], accessors: &Ident, errors: &mut Errors) {
    let mut methods: BTreeMap<String, &Ident> = BTreeMap::new();
    let mut markers: BTreeMap<String, &Ident> = BTreeMap::new();
    for field in fields {
        let ident = field.field.ident;
        let point_at = field
            .field
            .accessor
            .as_ref()
            .map_or_else(|| ident.to_token_stream(), |a| a.tokens.clone());
        for method in [&field.getter, &field.setter, &field.taker, &field.flasher] {
            let name = method.to_string();
            let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
            if SESSION_METHODS.contains(&name.as_str()) {
                errors.at(
                    &point_at,
                    format!(
                        "field `{ident}` would generate the accessor `{name}()`, which `Session` already has: choose another name with #[session(accessor = \"...\")]"
                    ),
                );
            } else if let Some(first) = methods.get(&name) {
                errors.at(
                    &point_at,
                    format!(
                        "fields `{first}` and `{ident}` would both generate the accessor `{name}()`: choose another name with #[session(accessor = \"...\")]"
                    ),
                );
            } else {
                methods.insert(name, ident);
            }
        }
        if let Some((marker, _)) = &field.required {
            let tokens = field
                .field
                .required
                .as_ref()
                .map_or_else(|| ident.to_token_stream(), |r| r.tokens.clone());
            let name = marker.to_string();
            if *accessors == name {
                errors.at(
                    &tokens,
                    format!("the guard marker `{name}` has the name of the accessors type: choose another with #[session(required = \"...\")]"),
                );
            } else if let Some(first) = markers.get(&name) {
                errors.at(
                    &tokens,
                    format!(
                        "fields `{first}` and `{ident}` would both generate the guard marker `{name}`: choose another with #[session(required = \"...\")]"
                    ),
                );
            } else {
                markers.insert(name, ident);
            }
        }
    }
}

/// `T` in `Option<T>` (also `std::option::Option<T>`).
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}
