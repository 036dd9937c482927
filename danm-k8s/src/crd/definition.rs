//! Building a CustomResourceDefinition for a type whose spec lives in danm-core, where kube's derive
//! cannot reach: the schema settings are the derive's own, so every DANM CRD looks alike.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ClusterResourceScope, NamespaceResourceScope};

use super::{CATEGORY, GROUP, VERSION};

/// The OpenAPI v3 schema of `T`, generated as `#[derive(CustomResource)]` does: inlined, without
/// `$schema`, `Option`s nullable, and rewritten into a Kubernetes structural schema.
pub(crate) fn schema_for<T: schemars::JsonSchema>() -> JSONSchemaProps {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    // Both types describe the same JSON Schema document; the derive converts the same way.
    serde_json::to_value(schema).and_then(serde_json::from_value).expect("schemars output is a JSONSchemaProps")
}

/// One additional printer column of `kubectl get`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) type_: &'static str,
    pub(crate) json_path: &'static str,
    pub(crate) description: &'static str,
    /// 0 shows the column always, 1 only with `-o wide`.
    pub(crate) priority: i32,
}

impl Column {
    /// The `Age` column every kind ends with.
    pub(crate) const AGE: Column = Column {
        name: "Age",
        type_: "date",
        json_path: ".metadata.creationTimestamp",
        description: "How long ago the object was created",
        priority: 0,
    };

    fn definition(&self) -> CustomResourceColumnDefinition {
        CustomResourceColumnDefinition {
            name: self.name.into(),
            type_: self.type_.into(),
            json_path: self.json_path.into(),
            description: Some(self.description.into()),
            priority: (self.priority != 0).then_some(self.priority),
            format: None,
        }
    }
}

/// What a CRD declares besides its schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names {
    pub(crate) kind: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) short_names: &'static [&'static str],
    pub(crate) scope: &'static str,
    pub(crate) columns: &'static [Column],
    pub(crate) status: bool,
}

/// The CRD of a kind from its names and its root type's schema.
pub(crate) fn build(names: &Names, schema: JSONSchemaProps) -> CustomResourceDefinition {
    let singular = names.kind.to_ascii_lowercase();
    CustomResourceDefinition {
        metadata: ObjectMeta { name: Some(format!("{}.{GROUP}", names.plural)), ..ObjectMeta::default() },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.into(),
            names: CustomResourceDefinitionNames {
                categories: Some(vec![CATEGORY.into()]),
                kind: names.kind.into(),
                plural: names.plural.into(),
                short_names: Some(names.short_names.iter().map(|s| (*s).to_owned()).collect()),
                singular: Some(singular),
                ..CustomResourceDefinitionNames::default()
            },
            scope: names.scope.into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: VERSION.into(),
                served: true,
                storage: true,
                additional_printer_columns: Some(names.columns.iter().map(Column::definition).collect()),
                schema: Some(CustomResourceValidation { open_api_v3_schema: Some(schema) }),
                subresources: names.status.then(|| CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                    scale: None,
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    }
}

/// The CRD `scope` of a kube resource scope type.
pub(crate) trait ScopeName {
    /// `Namespaced` or `Cluster`.
    const NAME: &'static str;
}

impl ScopeName for NamespaceResourceScope {
    const NAME: &'static str = "Namespaced";
}

impl ScopeName for ClusterResourceScope {
    const NAME: &'static str = "Cluster";
}

/// Declares the root type of a DANM kind whose spec type is defined in danm-core (so that kube's
/// `#[derive(CustomResource)]`, which must sit on the spec type, cannot be used), and implements for
/// it what the derive would: `new`, `Serialize` with `apiVersion` and `kind`, `Resource`, `HasSpec`,
/// `HasStatus` (with a status) and `CustomResourceExt`.
macro_rules! danm_resource {
    (
        $(#[$attr:meta])*
        pub struct $root:ident {
            kind: $kind:literal,
            plural: $plural:literal,
            short_names: [$($short:literal),* $(,)?],
            scope: $scope:ident,
            spec: $spec:ty,
            $(status: $status:ty,)?
            columns: $columns:expr $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $root {
            /// Object metadata.
            #[schemars(skip)]
            pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            /// The specification.
            pub spec: $spec,
            $(
                /// The status subresource.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub status: Option<$status>,
            )?
        }

        impl $root {
            /// An object named `name` with `spec` (and no status).
            pub fn new(name: &str, spec: $spec) -> Self {
                Self {
                    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        name: Some(name.to_owned()),
                        ..Default::default()
                    },
                    spec,
                    $(status: None::<$status>,)?
                }
            }

            const NAMES: $crate::crd::definition::Names = $crate::crd::definition::Names {
                kind: $kind,
                plural: $plural,
                short_names: &[$($short),*],
                scope: <kube::core::$scope as $crate::crd::definition::ScopeName>::NAME,
                columns: $columns,
                status: !<[&str]>::is_empty(&[$(stringify!($status)),*]),
            };
        }

        impl serde::Serialize for $root {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(serde::Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Repr<'a> {
                    api_version: &'a str,
                    kind: &'a str,
                    metadata: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                    spec: &'a $spec,
                    $(
                        #[serde(skip_serializing_if = "Option::is_none")]
                        status: Option<&'a $status>,
                    )?
                }
                Repr {
                    api_version: $crate::crd::API_VERSION,
                    kind: $kind,
                    metadata: &self.metadata,
                    spec: &self.spec,
                    $(status: self.status.as_ref() as Option<&$status>,)?
                }
                .serialize(serializer)
            }
        }

        impl kube::core::Resource for $root {
            type DynamicType = ();
            type Scope = kube::core::$scope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $crate::crd::GROUP.into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                $crate::crd::VERSION.into()
            }
            fn api_version(_: &()) -> std::borrow::Cow<'_, str> {
                $crate::crd::API_VERSION.into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }

        impl kube::core::object::HasSpec for $root {
            type Spec = $spec;

            fn spec(&self) -> &$spec {
                &self.spec
            }
            fn spec_mut(&mut self) -> &mut $spec {
                &mut self.spec
            }
        }

        $(
            impl kube::core::object::HasStatus for $root {
                type Status = $status;

                fn status(&self) -> Option<&$status> {
                    self.status.as_ref()
                }
                fn status_mut(&mut self) -> &mut Option<$status> {
                    &mut self.status
                }
            }
        )?

        impl kube::core::CustomResourceExt for $root {
            fn crd() -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
                $crate::crd::definition::build(&Self::NAMES, $crate::crd::definition::schema_for::<Self>())
            }
            fn crd_name() -> &'static str {
                concat!($plural, ".danm.k8s.io")
            }
            fn api_resource() -> kube::core::ApiResource {
                kube::core::ApiResource::erase::<Self>(&())
            }
            fn shortnames() -> &'static [&'static str] {
                &[$($short),*]
            }
        }
    };
}

pub(crate) use danm_resource;
