//! `#[derive(Aggregate)]`: the `es_core::AggregateType` impl of an aggregate's
//! state (its stable name and snapshot policy).
//!
//! `handle` and `apply` stay hand-written in `impl es_core::Aggregate`: the
//! derive and the trait share the name `Aggregate`, which works because derive
//! macros live in the macro namespace.

use std::str::FromStr;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Generics, LitInt, LitStr};

/// The keys `#[aggregate(...)]` accepts.
const KEYS: &str = "`name`, `snapshot_every`, `snapshot_version`";

/// Expands `#[derive(Aggregate)]`.
pub(crate) fn expand(ast: &DeriveInput) -> syn::Result<TokenStream> {
    if let Data::Union(_) = &ast.data {
        return Err(syn::Error::new_spanned(
            &ast.ident,
            "`Aggregate` can only be derived for structs and enums",
        ));
    }
    reject_generics(&ast.generics)?;
    let attrs = AggregateAttrs::parse(&ast.attrs)?;

    let ident = &ast.ident;
    let name = attrs
        .name
        .map_or_else(|| ident.unraw().to_string(), |lit| lit.value());
    let snapshot_version = attrs.snapshot_version.unwrap_or(1);
    let what = format!("snapshot of {name}");
    let (snapshot_every, encode, decode) = match attrs.snapshot_every {
        Some((every, span)) => {
            // Spanned on `snapshot_every`, so a state without serde impls is
            // reported on the key that asks for snapshots.
            let encode_state = quote_spanned!(span=> ::es_core::__private::encode::<__C, Self>);
            let decode_state = quote_spanned!(span=> ::es_core::__private::decode::<__C, Self>);
            let encode = quote! {
                fn encode_snapshot<__C: ::es_core::Codec>(
                    &self,
                    codec: &__C,
                ) -> ::core::result::Result<
                    ::core::option::Option<::std::vec::Vec<u8>>,
                    ::es_core::Error,
                > {
                    ::core::result::Result::Ok(::core::option::Option::Some(
                        #encode_state(codec, #what, #snapshot_version, self)?,
                    ))
                }
            };
            let decode = quote! {
                fn decode_snapshot<__C: ::es_core::Codec>(
                    codec: &__C,
                    bytes: &[u8],
                ) -> ::core::result::Result<::core::option::Option<Self>, ::es_core::Error> {
                    ::core::result::Result::Ok(::core::option::Option::Some(
                        #decode_state(codec, #what, #snapshot_version, bytes)?,
                    ))
                }
            };
            (quote!(::core::option::Option::Some(#every)), encode, decode)
        }
        None => (
            quote!(::core::option::Option::None),
            quote! {
                fn encode_snapshot<__C: ::es_core::Codec>(
                    &self,
                    _codec: &__C,
                ) -> ::core::result::Result<
                    ::core::option::Option<::std::vec::Vec<u8>>,
                    ::es_core::Error,
                > {
                    ::core::result::Result::Ok(::core::option::Option::None)
                }
            },
            quote! {
                fn decode_snapshot<__C: ::es_core::Codec>(
                    _codec: &__C,
                    _bytes: &[u8],
                ) -> ::core::result::Result<::core::option::Option<Self>, ::es_core::Error> {
                    ::core::result::Result::Ok(::core::option::Option::None)
                }
            },
        ),
    };

    Ok(quote! {
        #[automatically_derived]
        impl ::es_core::AggregateType for #ident {
            const TYPE_NAME: &'static str = #name;
            const SNAPSHOT_EVERY: ::core::option::Option<u64> = #snapshot_every;
            const SNAPSHOT_VERSION: u32 = #snapshot_version;

            #encode

            #decode
        }
    })
}

/// `#[aggregate(...)]`.
#[derive(Default)]
struct AggregateAttrs {
    /// `name = "..."`.
    name: Option<LitStr>,
    /// `snapshot_every = N` and where it was written.
    snapshot_every: Option<(u64, Span)>,
    /// `snapshot_version = N`.
    snapshot_version: Option<u32>,
}

impl AggregateAttrs {
    /// Reads every `#[aggregate(...)]` of the type.
    fn parse(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut out = Self::default();
        for attr in attrs
            .iter()
            .filter(|attr| attr.path().is_ident("aggregate"))
        {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    if out.name.is_some() {
                        return Err(meta.error("duplicate `name`"));
                    }
                    let name: LitStr = meta.value()?.parse()?;
                    let value = name.value();
                    if value.is_empty() || value.chars().any(char::is_control) {
                        return Err(syn::Error::new_spanned(
                            name,
                            "aggregate type names must be non-empty and without control \
                             characters: they prefix stream ids",
                        ));
                    }
                    out.name = Some(name);
                } else if meta.path.is_ident("snapshot_every") {
                    if out.snapshot_every.is_some() {
                        return Err(meta.error("duplicate `snapshot_every`"));
                    }
                    let span = meta.path.span();
                    let every = positive(
                        &meta,
                        "snapshot_every must be at least 1; leave it out to disable snapshots",
                    )?;
                    out.snapshot_every = Some((every, span));
                } else if meta.path.is_ident("snapshot_version") {
                    if out.snapshot_version.is_some() {
                        return Err(meta.error("duplicate `snapshot_version`"));
                    }
                    out.snapshot_version = Some(positive(&meta, "snapshot versions start at 1")?);
                } else {
                    let key = meta.path.to_token_stream().to_string().replace(' ', "");
                    return Err(meta.error(format!(
                        "unknown aggregate attribute `{key}`, expected one of {KEYS}"
                    )));
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}

/// `= N` with N at least 1; `zero` is the error for 0.
fn positive<N>(meta: &ParseNestedMeta<'_>, zero: &str) -> syn::Result<N>
where
    N: FromStr + PartialEq + From<u8>,
    N::Err: std::fmt::Display,
{
    let lit: LitInt = meta.value()?.parse()?;
    let value: N = lit.base10_parse()?;
    if value == N::from(0) {
        return Err(syn::Error::new_spanned(lit, zero));
    }
    Ok(value)
}

/// Aggregate types have no generics: the stable name must name one type.
fn reject_generics(generics: &Generics) -> syn::Result<()> {
    if !generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            generics,
            "aggregate types cannot be generic",
        ));
    }
    if let Some(where_clause) = &generics.where_clause {
        return Err(syn::Error::new_spanned(
            where_clause,
            "aggregate types cannot have a where clause",
        ));
    }
    Ok(())
}
