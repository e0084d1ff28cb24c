//! [`TypedTool`]: a tool whose input is a Rust type. Its JSON schema is derived from the type (with
//! [`schemars`]), and the model's input is decoded into it before [`TypedTool::call`]; input that does
//! not decode reaches the model as a tool error naming the bad field.
//!
//! ```
//! use orch_core::tool::{ToolContext, ToolError, ToolOutput, ToolRegistry, TypedTool};
//! use orch_core::tool::schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! /// The forecast's arguments (doc comments become the schema's descriptions).
//! #[derive(Deserialize, JsonSchema)]
//! #[schemars(crate = "orch_core::tool::schemars")]
//! struct Forecast {
//!     /// City name.
//!     city: String,
//!     /// Days ahead, 1 to 7.
//!     days: u8,
//! }
//!
//! struct Weather;
//!
//! #[async_trait::async_trait]
//! impl TypedTool for Weather {
//!     type Args = Forecast;
//!     const NAME: &'static str = "weather";
//!     fn description(&self) -> &str {
//!         "The weather forecast for a city."
//!     }
//!     async fn call(&self, _ctx: &ToolContext, args: Forecast) -> Result<ToolOutput, ToolError> {
//!         Ok(ToolOutput::text(format!("{}: sunny for {} days", args.city, args.days)))
//!     }
//! }
//!
//! let mut tools = ToolRegistry::with_builtins();
//! tools.register(Weather); // every TypedTool is a Tool
//! ```

use async_trait::async_trait;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Tool, ToolContext, ToolError, ToolOutput};

/// A tool with typed arguments. Every `TypedTool` is a [`Tool`]: register it like any other.
#[async_trait]
pub trait TypedTool: Send + Sync + 'static {
    /// The arguments; their JSON schema is what the model is offered.
    type Args: DeserializeOwned + JsonSchema + Send + 'static;
    /// The name the model uses.
    const NAME: &'static str;
    /// What it does, for the model.
    fn description(&self) -> &str;
    /// Runs it with decoded arguments.
    async fn call(&self, ctx: &ToolContext, args: Self::Args) -> Result<ToolOutput, ToolError>;

    /// See [`Tool::log_before_call`]. Default: no.
    fn log_before_call(&self) -> bool {
        false
    }
}

/// The input schema of `A` as offered to models: a JSON schema object, with subschemas inlined and
/// without the `$schema` and `title` keys (which some APIs refuse).
pub fn input_schema_of<A: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<A>().to_value();
    if let Value::Object(map) = &mut schema {
        map.remove("title");
        map.remove("$schema");
    }
    schema
}

/// Decodes a model's tool input into `A`. A failure is [`ToolError::InvalidInput`] naming the field
/// (`field 'days': invalid type: string "three", expected u8`, `missing field 'city'`).
pub fn decode_args<A: DeserializeOwned>(input: Value) -> Result<A, ToolError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string().replace('`', "'");
        if path.is_empty() || path == "." {
            ToolError::InvalidInput(inner)
        } else {
            ToolError::InvalidInput(format!("field '{path}': {inner}"))
        }
    })
}

#[async_trait]
impl<T: TypedTool> Tool for T {
    fn name(&self) -> &str {
        T::NAME
    }

    fn description(&self) -> &str {
        TypedTool::description(self)
    }

    fn input_schema(&self) -> Value {
        input_schema_of::<T::Args>()
    }

    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let args = decode_args::<T::Args>(input)?;
        TypedTool::call(self, ctx, args).await
    }

    fn log_before_call(&self) -> bool {
        TypedTool::log_before_call(self)
    }
}
