//! Step 1: `syn::DeriveInput` into a small model that keeps the syntax
//! nodes errors point at. Attribute mistakes are collected, not returned
//! early, so that one compile shows all of them.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned as _;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Token, Type};

/// Keys `#[session(...)]` accepts on a field, in the order error messages
/// list them.
const FIELD_KEYS: &str = "rename, default, required, accessor, skip";
/// Keys `#[session(...)]` accepts on the struct.
const CONTAINER_KEYS: &str = "rename_all, accessors";

/// The struct, as far as the derive cares.
pub(crate) struct Input<'a> {
    pub(crate) node: &'a DeriveInput,
    pub(crate) fields: Vec<Field<'a>>,
    /// `#[session(rename_all = "...")]` or `#[serde(rename_all = "...")]`.
    pub(crate) rename_all: Option<Spanned<RenameRule>>,
    /// `#[session(accessors = "Name")]`.
    pub(crate) accessors: Option<Spanned<Ident>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    /// `#[session(rename = "...")]`.
    pub(crate) rename: Option<Spanned<String>>,
    /// `#[serde(rename = "...")]`.
    pub(crate) serde_rename: Option<Spanned<String>>,
    /// `#[serde(alias = "...")]`: also read from these keys.
    pub(crate) aliases: Vec<Spanned<String>>,
    /// `#[session(default)]`, `#[serde(default = "path")]`, ...
    pub(crate) default: Option<Spanned<DefaultValue>>,
    /// `#[session(required)]` or `#[session(required = "Marker")]`.
    pub(crate) required: Option<Spanned<Option<Ident>>>,
    /// `#[session(accessor = "name")]`.
    pub(crate) accessor: Option<Spanned<Ident>>,
    /// `#[session(skip)]` or `#[serde(skip)]`.
    pub(crate) skip: Option<TokenStream>,
    /// `#[serde(with = "...")]` and friends.
    pub(crate) with: With,
    /// `#[serde(...)]` keys the record mapping cannot honour.
    pub(crate) unsupported: Vec<(TokenStream, &'static str)>,
}

/// A parsed value and the tokens to point at when it is wrong.
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) tokens: TokenStream,
}

/// Where an absent field's value comes from.
pub(crate) enum DefaultValue {
    /// `Default::default()` of the field's type.
    Trait,
    /// A function.
    Path(syn::ExprPath),
}

/// Custom serde functions for a field.
#[derive(Default)]
pub(crate) struct With {
    pub(crate) serialize: Option<syn::ExprPath>,
    pub(crate) deserialize: Option<syn::ExprPath>,
}

impl With {
    pub(crate) fn is_custom(&self) -> bool {
        self.serialize.is_some() || self.deserialize.is_some()
    }
}

/// serde's `rename_all` rules.
#[derive(Clone, Copy)]
pub(crate) enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

const RENAME_RULES: &str = "lowercase, UPPERCASE, PascalCase, camelCase, snake_case, SCREAMING_SNAKE_CASE, kebab-case, SCREAMING-KEBAB-CASE";

impl RenameRule {
    fn from_str(s: &str) -> Option<Self> {
        Some(match s {
            "lowercase" => Self::Lower,
            "UPPERCASE" => Self::Upper,
            "PascalCase" => Self::Pascal,
            "camelCase" => Self::Camel,
            "snake_case" => Self::Snake,
            "SCREAMING_SNAKE_CASE" => Self::ScreamingSnake,
            "kebab-case" => Self::Kebab,
            "SCREAMING-KEBAB-CASE" => Self::ScreamingKebab,
            _ => return None,
        })
    }

    /// Applies the rule to a snake_case field name, as serde does.
    pub(crate) fn apply(self, field: &str) -> String {
        match self {
            Self::Lower | Self::Snake => field.to_owned(),
            Self::Upper | Self::ScreamingSnake => field.to_ascii_uppercase(),
            Self::Pascal => {
                let mut out = String::new();
                let mut capitalize = true;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        out.push(ch.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
            Self::Camel => {
                let pascal = Self::Pascal.apply(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
            Self::Kebab => field.replace('_', "-"),
            Self::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
        }
    }
}

/// Collected errors.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Parses the input; `None` when it is not a struct with named fields.
pub(crate) fn parse<'a>(node: &'a DeriveInput, errors: &mut Errors) -> Option<Input<'a>> {
    let named = match &node.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named,
            Fields::Unnamed(fields) => {
                errors.at(
                    fields,
                    "#[derive(SessionData)] needs a struct with named fields: a tuple struct has no field names to use as record keys",
                );
                return None;
            }
            Fields::Unit => {
                errors.at(
                    &node.ident,
                    "#[derive(SessionData)] needs a struct with named fields: a unit struct has nothing to store",
                );
                return None;
            }
        },
        Data::Enum(data) => {
            errors.at(
                data.enum_token,
                "#[derive(SessionData)] needs a struct with named fields, not an enum: a session record is a JSON object",
            );
            return None;
        }
        Data::Union(data) => {
            errors.at(
                data.union_token,
                "#[derive(SessionData)] needs a struct with named fields, not a union",
            );
            return None;
        }
    };
    let mut input = Input {
        node,
        fields: Vec::new(),
        rename_all: None,
        accessors: None,
    };
    parse_container_attrs(&mut input, errors);
    for field in &named.named {
        let Some(ident) = &field.ident else { continue };
        input.fields.push(parse_field(field, ident, errors));
    }
    Some(input)
}

fn parse_container_attrs(input: &mut Input<'_>, errors: &mut Errors) {
    let mut serde_rename_all = None;
    for attr in &input.node.attrs {
        if attr.path().is_ident("session") {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename_all") {
                    let lit: LitStr = meta.value()?.parse()?;
                    match RenameRule::from_str(&lit.value()) {
                        Some(rule) => {
                            set_once(
                                &mut input.rename_all,
                                rule,
                                &meta,
                                &lit,
                                "rename_all",
                                errors,
                            );
                        }
                        None => errors.at(
                            &lit,
                            format!(
                                "unknown rename rule `{}` in #[session(rename_all = ...)], expected one of: {RENAME_RULES}",
                                lit.value()
                            ),
                        ),
                    }
                } else if meta.path.is_ident("accessors") {
                    let lit: LitStr = meta.value()?.parse()?;
                    match lit.parse::<Ident>() {
                        Ok(ident) => {
                            set_once(&mut input.accessors, ident, &meta, &lit, "accessors", errors);
                        }
                        Err(_) => errors.at(
                            &lit,
                            "#[session(accessors = \"...\")] takes a type name, e.g. \"CartAccessors\"",
                        ),
                    }
                } else {
                    skip_value(&meta)?;
                    errors.at(
                        &meta.path,
                        format!(
                            "unknown #[session(...)] key `{}` on a struct, expected one of: {CONTAINER_KEYS}",
                            path_text(&meta.path)
                        ),
                    );
                }
                Ok(())
            });
            if let Err(error) = result {
                errors.push(error);
            }
        } else if attr.path().is_ident("serde") {
            // serde reports malformed serde attributes itself.
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename_all") {
                    if let Some(lit) = serde_name(&meta, errors)?
                        && let Some(rule) = RenameRule::from_str(&lit.value())
                    {
                        serde_rename_all = Some(Spanned {
                            value: rule,
                            tokens: lit.to_token_stream(),
                        });
                    }
                } else if meta.path.is_ident("transparent") {
                    errors.at(
                        &meta.path,
                        "#[serde(transparent)] is not supported by #[derive(SessionData)]: a session record is a JSON object of fields",
                    );
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
    }
    if input.rename_all.is_none() {
        input.rename_all = serde_rename_all;
    }
}

fn parse_field<'a>(node: &'a syn::Field, ident: &'a Ident, errors: &mut Errors) -> Field<'a> {
    let mut field = Field {
        ident,
        ty: &node.ty,
        rename: None,
        serde_rename: None,
        aliases: Vec::new(),
        default: None,
        required: None,
        accessor: None,
        skip: None,
        with: With::default(),
        unsupported: Vec::new(),
    };
    let mut serde_default = None;
    for attr in &node.attrs {
        if attr.path().is_ident("session") {
            let result =
                attr.parse_nested_meta(|meta| parse_session_key(&mut field, &meta, errors));
            if let Err(error) = result {
                errors.push(error);
            }
        } else if attr.path().is_ident("serde") {
            let _ = attr.parse_nested_meta(|meta| {
                parse_serde_key(&mut field, &mut serde_default, &meta, errors)
            });
        }
    }
    if field.default.is_none() {
        field.default = serde_default;
    }
    field
}

fn parse_session_key(
    field: &mut Field<'_>,
    meta: &ParseNestedMeta<'_>,
    errors: &mut Errors,
) -> syn::Result<()> {
    let path = &meta.path;
    if path.is_ident("rename") {
        let lit: LitStr = meta.value()?.parse()?;
        set_once(&mut field.rename, lit.value(), meta, &lit, "rename", errors);
    } else if path.is_ident("default") {
        let value = if meta.input.peek(Token![=]) {
            let lit: LitStr = meta.value()?.parse()?;
            match lit.parse::<syn::ExprPath>() {
                Ok(path) => DefaultValue::Path(path),
                Err(_) => {
                    errors.at(
                        &lit,
                        "#[session(default = \"...\")] takes the path of a function, e.g. \"default_cart\"",
                    );
                    return Ok(());
                }
            }
        } else {
            DefaultValue::Trait
        };
        set_once(&mut field.default, value, meta, path, "default", errors);
    } else if path.is_ident("required") {
        let marker = if meta.input.peek(Token![=]) {
            let lit: LitStr = meta.value()?.parse()?;
            match lit.parse::<Ident>() {
                Ok(ident) => Some(ident),
                Err(_) => {
                    errors.at(
                        &lit,
                        "#[session(required = \"...\")] takes a type name for the guard's marker, e.g. \"LoggedIn\"",
                    );
                    return Ok(());
                }
            }
        } else {
            None
        };
        set_once(&mut field.required, marker, meta, path, "required", errors);
    } else if path.is_ident("accessor") {
        let lit: LitStr = meta.value()?.parse()?;
        match lit.parse::<Ident>() {
            Ok(ident) => set_once(&mut field.accessor, ident, meta, &lit, "accessor", errors),
            Err(_) => errors.at(
                &lit,
                "#[session(accessor = \"...\")] takes a method name, e.g. \"user\"",
            ),
        }
    } else if path.is_ident("skip") {
        if field.skip.is_some() {
            errors.at(path, "duplicate #[session(skip)]");
        }
        field.skip = Some(path.to_token_stream());
    } else {
        skip_value(meta)?;
        errors.at(
            path,
            format!(
                "unknown #[session(...)] key `{}`, expected one of: {FIELD_KEYS}",
                path_text(path)
            ),
        );
    }
    Ok(())
}

fn parse_serde_key(
    field: &mut Field<'_>,
    serde_default: &mut Option<Spanned<DefaultValue>>,
    meta: &ParseNestedMeta<'_>,
    errors: &mut Errors,
) -> syn::Result<()> {
    let path = &meta.path;
    if path.is_ident("rename") {
        if let Some(lit) = serde_name(meta, errors)? {
            field.serde_rename = Some(Spanned {
                value: lit.value(),
                tokens: lit.to_token_stream(),
            });
        }
    } else if path.is_ident("alias") {
        let lit: LitStr = meta.value()?.parse()?;
        field.aliases.push(Spanned {
            value: lit.value(),
            tokens: lit.to_token_stream(),
        });
    } else if path.is_ident("default") {
        let value = if meta.input.peek(Token![=]) {
            let lit: LitStr = meta.value()?.parse()?;
            DefaultValue::Path(lit.parse()?)
        } else {
            DefaultValue::Trait
        };
        *serde_default = Some(Spanned {
            value,
            tokens: path.to_token_stream(),
        });
    } else if path.is_ident("skip") {
        field.skip = Some(path.to_token_stream());
    } else if path.is_ident("with") {
        let lit: LitStr = meta.value()?.parse()?;
        let module: syn::ExprPath = lit.parse()?;
        let mut serialize = module.clone();
        serialize
            .path
            .segments
            .push(Ident::new("serialize", lit.span()).into());
        let mut deserialize = module;
        deserialize
            .path
            .segments
            .push(Ident::new("deserialize", lit.span()).into());
        field.with.serialize = Some(serialize);
        field.with.deserialize = Some(deserialize);
    } else if path.is_ident("serialize_with") {
        let lit: LitStr = meta.value()?.parse()?;
        field.with.serialize = Some(lit.parse()?);
    } else if path.is_ident("deserialize_with") {
        let lit: LitStr = meta.value()?.parse()?;
        field.with.deserialize = Some(lit.parse()?);
    } else if path.is_ident("flatten") {
        field.unsupported.push((
            path.to_token_stream(),
            "#[serde(flatten)] is not supported by #[derive(SessionData)]: each field is one record key",
        ));
    } else if path.is_ident("skip_serializing") || path.is_ident("skip_deserializing") {
        field.unsupported.push((
            path.to_token_stream(),
            "#[serde(skip_serializing)] and #[serde(skip_deserializing)] are not supported by #[derive(SessionData)]: use #[serde(skip)] or #[session(skip)]",
        ));
    } else {
        // `skip_serializing_if`, `bound`, `borrow`, `getter`: no bearing on
        // the record mapping (empty values are never written anyway).
        skip_value(meta)?;
    }
    Ok(())
}

/// A serde name: `= "x"`, or `(serialize = "x", deserialize = "x")` when
/// both agree.
fn serde_name(meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<Option<LitStr>> {
    if meta.input.peek(Token![=]) {
        return Ok(Some(meta.value()?.parse()?));
    }
    let mut ser: Option<LitStr> = None;
    let mut de: Option<LitStr> = None;
    meta.parse_nested_meta(|inner| {
        let lit: LitStr = inner.value()?.parse()?;
        if inner.path.is_ident("serialize") {
            ser = Some(lit);
        } else if inner.path.is_ident("deserialize") {
            de = Some(lit);
        }
        Ok(())
    })?;
    match (ser, de) {
        (Some(s), Some(d)) if s.value() != d.value() => {
            errors.at(
                &meta.path,
                "different serialize and deserialize names are not supported by #[derive(SessionData)]: a field has one record key",
            );
            Ok(None)
        }
        (Some(s), _) => Ok(Some(s)),
        (None, d) => Ok(d),
    }
}

fn set_once<T>(
    slot: &mut Option<Spanned<T>>,
    value: T,
    meta: &ParseNestedMeta<'_>,
    tokens: impl ToTokens,
    key: &str,
    errors: &mut Errors,
) {
    if slot.is_some() {
        errors.at(&meta.path, format!("duplicate #[session({key})]"));
        return;
    }
    *slot = Some(Spanned {
        value,
        tokens: tokens.to_token_stream(),
    });
}

/// Consumes `= value` or `(...)` after a key we do not interpret.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

fn path_text(path: &syn::Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

impl Field<'_> {
    /// The field's name without `r#`.
    pub(crate) fn name(&self) -> String {
        let name = self.ident.to_string();
        name.strip_prefix("r#").map_or(name.clone(), str::to_owned)
    }

    /// The span of the field, for generated items that belong to it.
    pub(crate) fn span(&self) -> Span {
        self.ident.span()
    }

    /// The field's type, for spans.
    pub(crate) fn ty_span(&self) -> Span {
        self.ty.span()
    }
}

#[cfg(test)]
mod tests {
    use super::RenameRule;

    #[test]
    fn rename_rules_follow_serde() {
        let cases = [
            ("lowercase", "user_id"),
            ("UPPERCASE", "USER_ID"),
            ("PascalCase", "UserId"),
            ("camelCase", "userId"),
            ("snake_case", "user_id"),
            ("SCREAMING_SNAKE_CASE", "USER_ID"),
            ("kebab-case", "user-id"),
            ("SCREAMING-KEBAB-CASE", "USER-ID"),
        ];
        for (rule, expected) in cases {
            let rule = RenameRule::from_str(rule).unwrap();
            assert_eq!(rule.apply("user_id"), expected);
        }
        assert_eq!(RenameRule::Camel.apply("x"), "x");
        assert_eq!(RenameRule::Camel.apply(""), "");
        assert!(RenameRule::from_str("camelcase").is_none());
    }
}
