//! Layers of settings: the configuration file and the command line each say some settings; a layer
//! holds what one of them said (`None`: not said there). Layers are merged field by field in one place
//! (`settings`), the higher one winning, and the result is resolved over the defaults, which are
//! declared once, in each options type's `Default`.

/// Merging two layers: `self` is the higher one (flags over the file).
pub trait Combine {
    fn combine(self, lower: Self) -> Self;
}

impl<T> Combine for Option<T> {
    fn combine(self, lower: Self) -> Self {
        self.or(lower)
    }
}

/// Declares the layer of an options type: the same fields, each optional, read from the configuration
/// (unknown keys are errors), merged with [`Combine`], and resolved over the defaults. A field that is
/// itself optional in the options type is declared with its inner type.
macro_rules! layer {
    (
        $(#[$meta:meta])*
        pub struct $layer:ident => $full:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $layer {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
        }

        impl $crate::layer::Combine for $layer {
            fn combine(self, lower: Self) -> Self {
                $layer { $( $field: self.$field.or(lower.$field), )* }
            }
        }

        impl $layer {
            /// The options this layer says, the defaults for the rest.
            #[allow(clippy::useless_conversion)]
            pub fn resolve(self, defaults: $full) -> $full {
                $full {
                    $( $field: match self.$field {
                        Some(v) => v.into(),
                        None => defaults.$field,
                    }, )*
                }
            }
        }
    };
}

pub(crate) use layer;
