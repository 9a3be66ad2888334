//! `closed_enum!`: an enum for a closed set of values (a plan, a role, a
//! status) with one list driving its UPPER_SNAKE names, parsing, serde,
//! `Display` and `ALL` (which the OpenAPI enums are generated from), so the
//! four can never disagree.

/// Declares a closed enum: `Name { Variant => "TEXT", … }`.
macro_rules! closed_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's UPPER_SNAKE name, as stored and sent over the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "must be one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}
pub(crate) use closed_enum;

#[cfg(test)]
mod tests {
    closed_enum!(
        /// A test set.
        Colour {
            /// Red.
            Red => "RED",
            /// Dark blue.
            DarkBlue => "DARK_BLUE",
        }
    );

    #[test]
    fn one_list_drives_names_parsing_and_serde() {
        assert_eq!(Colour::ALL, &[Colour::Red, Colour::DarkBlue]);
        for colour in Colour::ALL {
            assert_eq!(colour.as_str().parse::<Colour>(), Ok(*colour));
            assert_eq!(colour.to_string(), colour.as_str());
            let json = serde_json::to_string(colour).expect("serialises");
            assert_eq!(json, format!("\"{}\"", colour.as_str()));
            assert_eq!(serde_json::from_str::<Colour>(&json).ok(), Some(*colour));
        }
        assert_eq!(
            "dark_blue".parse::<Colour>(),
            Err("must be one of RED, DARK_BLUE".to_string())
        );
    }
}
