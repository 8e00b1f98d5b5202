//! `#[derive(Event)]`: the `es_core::Event` impl of an enum of event types.
//!
//! Each variant is encoded on its own, never with the enum's tag: a struct
//! variant through a hidden struct with the same fields (borrowed to encode,
//! owned to decode), a one-field tuple variant as its field, a tuple variant
//! with several fields as a tuple, a unit variant as `()`. Field attributes
//! other than `#[event(...)]` (serde's, mostly) are copied onto the hidden
//! structs; a tuple variant whose fields carry `#[serde(...)]` goes through a
//! hidden newtype or tuple struct instead, which serde encodes the same way.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Generics, Ident, LitInt, LitStr, Token, Type};

/// The keys `#[event(...)]` accepts on the enum.
const CONTAINER_KEYS: &[&str] = &["version"];
/// The keys `#[event(...)]` accepts on a variant.
const VARIANT_KEYS: &[&str] = &["name", "version", "upcast"];
/// The keys `#[event(...)]` accepts on a field.
const FIELD_KEYS: &[&str] = &["subject", "personal"];

/// Expands `#[derive(Event)]`.
pub(crate) fn expand(ast: &DeriveInput) -> syn::Result<TokenStream> {
    let Data::Enum(data) = &ast.data else {
        return Err(syn::Error::new_spanned(
            &ast.ident,
            "`Event` can only be derived for enums: each variant is one event type",
        ));
    };
    reject_generics(&ast.generics)?;
    if data.variants.is_empty() {
        return Err(syn::Error::new_spanned(
            &ast.ident,
            "an event enum needs at least one variant: each variant is one event type",
        ));
    }

    let mut errors = Errors::default();
    let default_version = errors.ok(container_version(&ast.attrs)).unwrap_or(1);
    let variants: Vec<EventVariant<'_>> = data
        .variants
        .iter()
        .filter_map(|variant| EventVariant::parse(variant, default_version, &mut errors))
        .collect();
    let mut names = HashSet::new();
    for variant in &variants {
        if !names.insert(variant.name.as_str()) {
            errors.push(syn::Error::new(
                variant.name_span,
                format!(
                    "duplicate event type name `{}`: another variant already uses it; \
                     set a distinct one with #[event(name = \"...\")]",
                    variant.name
                ),
            ));
        }
    }
    errors.finish()?;

    let ident = &ast.ident;
    let helpers = variants.iter().map(EventVariant::helper_types);
    let infos = variants.iter().map(EventVariant::type_info);
    let event_type_arms = variants.iter().map(|variant| {
        let (variant_ident, name) = (variant.ident, &variant.name);
        quote! { Self::#variant_ident { .. } => #name, }
    });
    let version_arms = variants.iter().map(|variant| {
        let (variant_ident, version) = (variant.ident, variant.version);
        quote! { Self::#variant_ident { .. } => #version, }
    });
    let encode_arms = variants.iter().map(EventVariant::encode_arm);
    let decode_arms = variants.iter().map(EventVariant::decode_arm);

    Ok(quote! {
        #[allow(deprecated)]
        const _: () = {
            #(#helpers)*

            #[automatically_derived]
            impl ::es_core::Event for #ident {
                const TYPES: &'static [::es_core::EventTypeInfo] = &[#(#infos),*];

                fn event_type(&self) -> &'static str {
                    match self {
                        #(#event_type_arms)*
                    }
                }

                fn schema_version(&self) -> u32 {
                    match self {
                        #(#version_arms)*
                    }
                }

                fn encode<__C: ::es_core::Codec>(
                    &self,
                    codec: &__C,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, ::es_core::Error> {
                    match self {
                        #(#encode_arms)*
                    }
                }

                fn decode<__C: ::es_core::Codec>(
                    codec: &__C,
                    event_type: &str,
                    schema_version: u32,
                    payload: &[u8],
                ) -> ::core::result::Result<Self, ::es_core::Error> {
                    match event_type {
                        #(#decode_arms)*
                        _ => ::core::result::Result::Err(
                            ::es_core::__private::unknown_event_type(event_type),
                        ),
                    }
                }
            }
        };
    })
}

/// One variant: one event type.
struct EventVariant<'a> {
    /// The variant's identifier.
    ident: &'a Ident,
    /// The stored type name.
    name: String,
    /// Where the name comes from: the `name = "..."` literal or the variant.
    name_span: Span,
    /// The current schema version.
    version: u32,
    /// The older versions and the types they decode through, by version.
    upcasts: Vec<(u32, Type)>,
    /// The variant's fields.
    shape: Shape<'a>,
}

/// The fields of a variant.
enum Shape<'a> {
    /// `V` or `V()` (built as `V {}`, which fits both).
    Unit,
    /// `V(A, B)`, at least one field, encoded as the field or a tuple.
    Tuple {
        /// The fields' types.
        types: Vec<&'a Type>,
        /// The fields' attributes other than `#[event(...)]`.
        attrs: Vec<Vec<&'a Attribute>>,
        /// Whether a field carries `#[serde(...)]`: the variant is then encoded
        /// through helper tuple structs carrying the attributes (a newtype or
        /// tuple struct, which serde encodes like the field or the tuple).
        helper: bool,
    },
    /// `V { a: A }`, possibly without fields.
    Named(Vec<NamedField<'a>>),
}

/// A named field of a struct variant.
struct NamedField<'a> {
    /// The field's identifier.
    ident: &'a Ident,
    /// The field's type.
    ty: &'a Type,
    /// Its attributes other than `#[event(...)]`, copied onto the helper types.
    attrs: Vec<&'a Attribute>,
    /// Whether it holds a subject id.
    subject: bool,
    /// The subject field its personal data belongs to, when it is personal.
    personal_of: Option<&'a Ident>,
}

impl<'a> EventVariant<'a> {
    /// Reads a variant and its attributes; `None` (with the errors recorded)
    /// when they are invalid.
    fn parse(variant: &'a syn::Variant, default_version: u32, errors: &mut Errors) -> Option<Self> {
        let attrs = errors.ok(VariantAttrs::parse(&variant.attrs));
        let shape = errors.ok(Shape::parse(variant));
        let attrs = attrs?;
        let shape = shape?;

        let version = attrs.version.unwrap_or(default_version);
        let mut upcasts = Vec::with_capacity(attrs.upcasts.len());
        let mut valid = true;
        for (lit, old, ty) in attrs.upcasts {
            if old >= version {
                valid = false;
                let hint = if attrs.version.is_none() {
                    "; raise the variant's version with #[event(version = N)]"
                } else {
                    ""
                };
                errors.push(syn::Error::new_spanned(
                    lit,
                    format!(
                        "upcast version {old} must be below the current version {version} of \
                         `{}`{hint}",
                        variant.ident
                    ),
                ));
            } else {
                upcasts.push((old, ty));
            }
        }
        upcasts.sort_by_key(|(old, _)| *old);

        let (name, name_span) = match attrs.name {
            Some(lit) => (lit.value(), lit.span()),
            None => (variant.ident.unraw().to_string(), variant.ident.span()),
        };
        valid.then_some(Self {
            ident: &variant.ident,
            name,
            name_span,
            version,
            upcasts,
            shape,
        })
    }

    /// The `__EsSer…`/`__EsDe…` identifiers of the variant's helper types.
    fn helper_idents(&self) -> (Ident, Ident) {
        (
            format_ident!("__EsSer{}", self.ident),
            format_ident!("__EsDe{}", self.ident),
        )
    }

    /// What encoding and decoding errors call this event type.
    fn what(&self) -> String {
        format!("event {}", self.name)
    }

    /// The helper structs a variant is encoded and decoded through, if any.
    fn helper_types(&self) -> TokenStream {
        let (ser, de) = self.helper_idents();
        let fields = match &self.shape {
            Shape::Named(fields) => fields,
            Shape::Tuple {
                types,
                attrs,
                helper: true,
            } => {
                return quote! {
                    #[derive(::es_core::__private::serde::Serialize)]
                    #[serde(crate = "::es_core::__private::serde")]
                    #[allow(non_camel_case_types, dead_code)]
                    struct #ser<'__es>(#( #(#attrs)* &'__es #types, )*);

                    #[derive(::es_core::__private::serde::Deserialize)]
                    #[serde(crate = "::es_core::__private::serde")]
                    #[allow(non_camel_case_types, dead_code)]
                    struct #de(#( #(#attrs)* #types, )*);
                };
            }
            Shape::Unit | Shape::Tuple { .. } => return TokenStream::new(),
        };
        let field_attrs: Vec<_> = fields.iter().map(|f| &f.attrs).collect();
        let field_idents: Vec<_> = fields.iter().map(|f| f.ident).collect();
        let field_types: Vec<_> = fields.iter().map(|f| f.ty).collect();
        let lifetime = (!fields.is_empty()).then(|| quote!(<'__es>));
        // Personal fields are (de)serialized with their field path set in the
        // encryption scope, so that the ciphertext is bound to the field.
        let mut path_fns = Vec::new();
        let (mut ser_attrs, mut de_attrs) = (Vec::new(), Vec::new());
        for field in fields {
            if field.personal_of.is_none() {
                ser_attrs.push(TokenStream::new());
                de_attrs.push(TokenStream::new());
                continue;
            }
            let path = self.field_path(field);
            let ser_fn = format_ident!("__es_ser_{}_{}", self.ident, field.ident.unraw());
            let de_fn = format_ident!("__es_de_{}_{}", self.ident, field.ident.unraw());
            let (ser_name, de_name) = (ser_fn.to_string(), de_fn.to_string());
            ser_attrs.push(quote!(#[serde(serialize_with = #ser_name)]));
            de_attrs.push(quote!(#[serde(deserialize_with = #de_name)]));
            path_fns.push(quote! {
                #[allow(non_snake_case)]
                fn #ser_fn<__T, __S>(
                    value: &__T,
                    serializer: __S,
                ) -> ::core::result::Result<__S::Ok, __S::Error>
                where
                    __T: ::es_core::__private::serde::Serialize + ?::core::marker::Sized,
                    __S: ::es_core::__private::serde::Serializer,
                {
                    ::es_core::__private::with_path(#path, || {
                        ::es_core::__private::serde::Serialize::serialize(value, serializer)
                    })
                }

                #[allow(non_snake_case)]
                fn #de_fn<'__de, __T, __D>(
                    deserializer: __D,
                ) -> ::core::result::Result<__T, __D::Error>
                where
                    __T: ::es_core::__private::serde::Deserialize<'__de>,
                    __D: ::es_core::__private::serde::Deserializer<'__de>,
                {
                    ::es_core::__private::with_path(#path, || {
                        <__T as ::es_core::__private::serde::Deserialize<'__de>>::deserialize(
                            deserializer,
                        )
                    })
                }
            });
        }
        quote! {
            #(#path_fns)*

            #[derive(::es_core::__private::serde::Serialize)]
            #[serde(crate = "::es_core::__private::serde")]
            #[allow(non_camel_case_types, non_snake_case, dead_code)]
            struct #ser #lifetime {
                #( #(#field_attrs)* #ser_attrs #field_idents: &'__es #field_types, )*
            }

            #[derive(::es_core::__private::serde::Deserialize)]
            #[serde(crate = "::es_core::__private::serde")]
            #[allow(non_camel_case_types, non_snake_case, dead_code)]
            struct #de {
                #( #(#field_attrs)* #de_attrs #field_idents: #field_types, )*
            }
        }
    }

    /// `Event.field`: what a personal field's ciphertext is bound to.
    fn field_path(&self, field: &NamedField<'_>) -> String {
        format!("{}.{}", self.name, field.ident.unraw())
    }

    /// The variant's entry in `Event::TYPES`.
    fn type_info(&self) -> TokenStream {
        let (name, version) = (&self.name, self.version);
        let upcasts = self.upcasts.iter().map(|(old, _)| old);
        let (mut subjects, mut personal) = (Vec::new(), Vec::new());
        if let Shape::Named(fields) = &self.shape {
            for field in fields {
                let field_name = field.ident.unraw().to_string();
                if field.subject {
                    subjects.push(field_name.clone());
                }
                if let Some(subject) = field.personal_of {
                    let subject = subject.unraw().to_string();
                    personal.push(quote! {
                        ::es_core::PersonalField { field: #field_name, subject: #subject }
                    });
                }
            }
        }
        quote! {
            ::es_core::EventTypeInfo {
                name: #name,
                version: #version,
                upcasts_from: &[#(#upcasts),*],
                subjects: &[#(#subjects),*],
                personal: &[#(#personal),*],
            }
        }
    }

    /// The `encode` arm: the variant's contents, never its tag.
    fn encode_arm(&self) -> TokenStream {
        let (ident, what, version) = (self.ident, self.what(), self.version);
        let (pattern, value) = match &self.shape {
            Shape::Unit => (quote!({ .. }), quote!(&())),
            Shape::Tuple { types, helper, .. } => {
                let bindings = bindings(types.len());
                let value = match bindings.as_slice() {
                    several if *helper => {
                        let (ser, _) = self.helper_idents();
                        quote!(&#ser(#(#several),*))
                    }
                    [only] => quote!(#only),
                    several => quote!(&(#(#several),*)),
                };
                (quote!((#(#bindings),*)), value)
            }
            Shape::Named(fields) => {
                let (ser, _) = self.helper_idents();
                let idents: Vec<_> = fields.iter().map(|f| f.ident).collect();
                let bindings = bindings(fields.len());
                // Each personal field must belong to the subject its event names.
                let checks = fields.iter().filter_map(|field| {
                    let subject = field.personal_of?;
                    let at = |wanted: &Ident| {
                        fields
                            .iter()
                            .position(|f| f.ident == wanted)
                            .map(|i| &bindings[i])
                    };
                    let (personal, subject) = (at(field.ident)?, at(subject)?);
                    let path = self.field_path(field);
                    // Spanned on the field's type: a field that is not `Personal<T>`
                    // is reported there.
                    Some(quote_spanned! {field.ty.span()=>
                        ::es_core::__private::check_subject(#personal, #subject, #path)?;
                    })
                });
                return quote! {
                    Self::#ident { #(#idents: #bindings),* } => {
                        #(#checks)*
                        ::es_core::__private::encode(
                            codec,
                            #what,
                            #version,
                            &#ser { #(#idents: #bindings),* },
                        )
                    }
                };
            }
        };
        quote! {
            Self::#ident #pattern => ::es_core::__private::encode(codec, #what, #version, #value),
        }
    }

    /// The `decode` arm of this event type: the current version, then upcasts.
    fn decode_arm(&self) -> TokenStream {
        let (ident, name, what, version) = (self.ident, &self.name, self.what(), self.version);
        let (ty, pattern, construct) = match &self.shape {
            Shape::Unit => (quote!(()), quote!(()), quote!(Self::#ident {})),
            Shape::Tuple { types, helper, .. } => {
                let bindings = bindings(types.len());
                match (types.as_slice(), bindings.as_slice()) {
                    _ if *helper => {
                        let (_, de) = self.helper_idents();
                        (
                            quote!(#de),
                            quote!(#de(#(#bindings),*)),
                            quote!(Self::#ident(#(#bindings),*)),
                        )
                    }
                    ([ty], [binding]) => (
                        quote!(#ty),
                        quote!(#binding),
                        quote!(Self::#ident(#binding)),
                    ),
                    _ => (
                        quote!((#(#types,)*)),
                        quote!((#(#bindings,)*)),
                        quote!(Self::#ident(#(#bindings),*)),
                    ),
                }
            }
            Shape::Named(fields) => {
                let (_, de) = self.helper_idents();
                let idents: Vec<_> = fields.iter().map(|f| f.ident).collect();
                let bindings = bindings(fields.len());
                (
                    quote!(#de),
                    quote!(#de { #(#idents: #bindings),* }),
                    quote!(Self::#ident { #(#idents: #bindings),* }),
                )
            }
        };
        let upcast_arms = self.upcasts.iter().map(|(old, old_ty)| {
            // Spanned on the upcast type, so a missing `Deserialize` or `From`
            // impl is reported on the attribute that names it.
            let decode_old = quote_spanned! {old_ty.span()=>
                ::es_core::__private::decode::<__C, #old_ty>(codec, #what, #old, payload)
            };
            let from_old = quote_spanned! {old_ty.span()=>
                <Self as ::core::convert::From<#old_ty>>::from
            };
            quote! {
                #old => {
                    let old: #old_ty = #decode_old?;
                    ::core::result::Result::Ok(#from_old(old))
                }
            }
        });
        quote! {
            #name => match schema_version {
                #version => {
                    let #pattern =
                        ::es_core::__private::decode::<__C, #ty>(codec, #what, #version, payload)?;
                    ::core::result::Result::Ok(#construct)
                }
                #(#upcast_arms)*
                _ => ::core::result::Result::Err(::es_core::__private::unknown_schema_version(
                    event_type,
                    schema_version,
                    #version,
                )),
            },
        }
    }
}

/// `__es_0`, `__es_1`, …: bindings that cannot shadow the methods' parameters.
fn bindings(count: usize) -> Vec<Ident> {
    (0..count).map(|i| format_ident!("__es_{}", i)).collect()
}

impl<'a> Shape<'a> {
    /// Reads a variant's fields and their `#[event(...)]` attributes.
    fn parse(variant: &'a syn::Variant) -> syn::Result<Self> {
        match &variant.fields {
            Fields::Unit => Ok(Self::Unit),
            Fields::Unnamed(fields) => {
                let mut errors = Errors::default();
                for attr in fields.unnamed.iter().flat_map(|f| event_attrs(&f.attrs)) {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        format!(
                            "#[event(...)] field attributes need named fields, and `{}` is a \
                             tuple variant: give it named fields or move the data into a struct",
                            variant.ident
                        ),
                    ));
                }
                errors.finish()?;
                if fields.unnamed.is_empty() {
                    return Ok(Self::Unit);
                }
                let attrs: Vec<_> = fields
                    .unnamed
                    .iter()
                    .map(|f| copied_attrs(&f.attrs))
                    .collect();
                let helper = attrs
                    .iter()
                    .flatten()
                    .any(|attr| attr.path().is_ident("serde"));
                Ok(Self::Tuple {
                    types: fields.unnamed.iter().map(|f| &f.ty).collect(),
                    attrs,
                    helper,
                })
            }
            Fields::Named(fields) => Self::parse_named(fields),
        }
    }

    /// Reads the fields of a struct variant and resolves each personal field's
    /// subject.
    fn parse_named(fields: &'a syn::FieldsNamed) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let mut parsed = Vec::with_capacity(fields.named.len());
        for field in &fields.named {
            let ident = field.ident.as_ref().expect("named fields have identifiers");
            if let Some(attrs) = errors.ok(FieldAttrs::parse(&field.attrs)) {
                parsed.push((ident, field, attrs));
            }
        }
        errors.finish()?;

        let subjects: Vec<&Ident> = parsed
            .iter()
            .filter(|(_, _, attrs)| attrs.subject)
            .map(|(ident, _, _)| *ident)
            .collect();
        let mut named = Vec::with_capacity(parsed.len());
        for (ident, field, attrs) in &parsed {
            let personal_of = match &attrs.personal {
                None => None,
                Some(personal) => errors.ok(resolve_subject(ident, personal, &parsed, &subjects)),
            };
            named.push(NamedField {
                ident,
                ty: &field.ty,
                attrs: copied_attrs(&field.attrs),
                subject: attrs.subject,
                personal_of,
            });
        }
        errors.finish()?;
        Ok(Self::Named(named))
    }
}

/// The subject field a personal field belongs to.
fn resolve_subject<'a>(
    field: &Ident,
    personal: &Personal,
    fields: &[(&'a Ident, &'a syn::Field, FieldAttrs)],
    subjects: &[&'a Ident],
) -> syn::Result<&'a Ident> {
    if let Some(explicit) = &personal.subject {
        let wanted = explicit.unraw();
        return match fields.iter().find(|(ident, _, _)| ident.unraw() == wanted) {
            None => Err(syn::Error::new_spanned(
                explicit,
                format!(
                    "no field `{wanted}` in this variant: the subject must be one of its fields"
                ),
            )),
            Some((_, _, attrs)) if !attrs.subject => Err(syn::Error::new_spanned(
                explicit,
                format!("`{wanted}` is not a subject field: mark it with #[event(subject)]"),
            )),
            Some((ident, _, _)) => Ok(ident),
        };
    }
    let field = field.unraw();
    match subjects {
        [only] => Ok(only),
        [] => Err(syn::Error::new(
            personal.span,
            format!(
                "personal field `{field}` needs a subject: mark the field holding the subject \
                 id with #[event(subject)]"
            ),
        )),
        several => {
            let names: Vec<String> = several.iter().map(|s| format!("`{}`", s.unraw())).collect();
            Err(syn::Error::new(
                personal.span,
                format!(
                    "ambiguous subject for personal field `{field}`: the variant has several \
                     subject fields ({}); name it with #[event(personal(subject = field))]",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// `#[event(...)]` on a variant.
#[derive(Default)]
struct VariantAttrs {
    /// `name = "..."`.
    name: Option<LitStr>,
    /// `version = N`.
    version: Option<u32>,
    /// `upcast(N = Type, ...)`, in the order written.
    upcasts: Vec<(LitInt, u32, Type)>,
}

impl VariantAttrs {
    /// Reads every `#[event(...)]` of a variant.
    fn parse(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut out = Self::default();
        for attr in event_attrs(attrs) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    if out.name.is_some() {
                        return Err(meta.error("duplicate `name`"));
                    }
                    let name: LitStr = meta.value()?.parse()?;
                    if name.value().is_empty() {
                        return Err(syn::Error::new_spanned(
                            name,
                            "event type names cannot be empty",
                        ));
                    }
                    out.name = Some(name);
                } else if meta.path.is_ident("version") {
                    if out.version.is_some() {
                        return Err(meta.error("duplicate `version`"));
                    }
                    out.version = Some(parse_version(&meta)?);
                } else if meta.path.is_ident("upcast") {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    for entry in Punctuated::<Upcast, Token![,]>::parse_terminated(&content)? {
                        let old = positive(&entry.version)?;
                        if out.upcasts.iter().any(|(_, seen, _)| *seen == old) {
                            return Err(syn::Error::new_spanned(
                                &entry.version,
                                format!("duplicate upcast version {old}"),
                            ));
                        }
                        out.upcasts.push((entry.version, old, entry.ty));
                    }
                } else {
                    return Err(unknown_key(&meta, VARIANT_KEYS));
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}

/// One `N = Type` of `upcast(...)`.
struct Upcast {
    /// The old version.
    version: LitInt,
    /// The type its payloads decode into.
    ty: Type,
}

impl Parse for Upcast {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let version = input.parse()?;
        input.parse::<Token![=]>()?;
        let ty = input.parse()?;
        Ok(Self { version, ty })
    }
}

/// `#[event(...)]` on a field.
#[derive(Default)]
struct FieldAttrs {
    /// `subject`.
    subject: bool,
    /// `personal` or `personal(subject = field)`.
    personal: Option<Personal>,
}

/// `personal` or `personal(subject = field)`.
struct Personal {
    /// The `personal` key, where missing-subject errors point.
    span: Span,
    /// The explicitly named subject field.
    subject: Option<Ident>,
}

impl FieldAttrs {
    /// Reads every `#[event(...)]` of a field.
    fn parse(attrs: &[Attribute]) -> syn::Result<Self> {
        const BOTH: &str = "a field cannot be both a subject and personal data";
        let mut out = Self::default();
        for attr in event_attrs(attrs) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("subject") {
                    if out.subject {
                        return Err(meta.error("duplicate `subject`"));
                    }
                    if out.personal.is_some() {
                        return Err(meta.error(BOTH));
                    }
                    out.subject = true;
                } else if meta.path.is_ident("personal") {
                    if out.personal.is_some() {
                        return Err(meta.error("duplicate `personal`"));
                    }
                    if out.subject {
                        return Err(meta.error(BOTH));
                    }
                    let mut subject = None;
                    if meta.input.peek(syn::token::Paren) {
                        meta.parse_nested_meta(|inner| {
                            if !inner.path.is_ident("subject") {
                                return Err(unknown_key(&inner, &["subject"]));
                            }
                            if subject.is_some() {
                                return Err(inner.error("duplicate `subject`"));
                            }
                            subject = Some(inner.value()?.call(Ident::parse_any)?);
                            Ok(())
                        })?;
                    }
                    out.personal = Some(Personal {
                        span: meta.path.span(),
                        subject,
                    });
                } else {
                    return Err(unknown_key(&meta, FIELD_KEYS));
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}

/// The default schema version from `#[event(version = N)]` on the enum.
fn container_version(attrs: &[Attribute]) -> syn::Result<u32> {
    let mut version = None;
    for attr in event_attrs(attrs) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("version") {
                return Err(unknown_key(&meta, CONTAINER_KEYS));
            }
            if version.is_some() {
                return Err(meta.error("duplicate `version`"));
            }
            version = Some(parse_version(&meta)?);
            Ok(())
        })?;
    }
    Ok(version.unwrap_or(1))
}

/// The `#[event(...)]` attributes among `attrs`.
fn event_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|attr| attr.path().is_ident("event"))
}

/// The attributes of a field that its helper-struct copies carry: all but
/// `#[event(...)]`.
fn copied_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs
        .iter()
        .filter(|attr| !attr.path().is_ident("event"))
        .collect()
}

/// `= N`, a schema version.
fn parse_version(meta: &ParseNestedMeta<'_>) -> syn::Result<u32> {
    positive(&meta.value()?.parse()?)
}

/// A schema version: a `u32` of at least 1.
fn positive(lit: &LitInt) -> syn::Result<u32> {
    match lit.base10_parse()? {
        0 => Err(syn::Error::new_spanned(lit, "schema versions start at 1")),
        version => Ok(version),
    }
}

/// The error for a key that `#[event(...)]` does not know here.
fn unknown_key(meta: &ParseNestedMeta<'_>, expected: &[&str]) -> syn::Error {
    let key = meta.path.to_token_stream().to_string().replace(' ', "");
    let expected: Vec<String> = expected.iter().map(|key| format!("`{key}`")).collect();
    let expected = match expected.as_slice() {
        [only] => only.clone(),
        several => format!("one of {}", several.join(", ")),
    };
    meta.error(format!(
        "unknown event attribute `{key}`, expected {expected}"
    ))
}

/// Event enums have no generics: their encoding must not depend on a parameter.
fn reject_generics(generics: &Generics) -> syn::Result<()> {
    if !generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            generics,
            "event enums cannot be generic",
        ));
    }
    if let Some(where_clause) = &generics.where_clause {
        return Err(syn::Error::new_spanned(
            where_clause,
            "event enums cannot have a where clause",
        ));
    }
    Ok(())
}

/// Errors collected so that one expansion reports all of them.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    /// Records an error.
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// The value, or `None` with the error recorded.
    fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// `Err` with everything recorded so far, if anything was.
    fn finish(&mut self) -> syn::Result<()> {
        self.0.take().map_or(Ok(()), Err)
    }
}
