//! deploy/webhook registers every path the webhook serves, for the kinds and operations it decides, the
//! way the API server needs it.

use danm_k8s::webhook::{NETWORK_DELETE_PATH, NETWORK_PATH, PATHS, POD_PATH, TENANT_CONFIG_PATH};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use serde::Deserialize;

const WEBHOOKS: &str = include_str!("../../deploy/webhook/webhooks.yaml");
const RBAC: &str = include_str!("../../deploy/webhook/rbac.yaml");

fn documents(text: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(text).map(|d| serde_yaml::Value::deserialize(d).unwrap()).collect()
}

/// (path, failurePolicy, sideEffects, timeout, rules) of one webhook.
type Registration = (String, String, String, i32, Vec<RuleWithOperations>);

fn path(c: &WebhookClientConfig) -> String {
    let service = c.service.as_ref().expect("a Service reference");
    assert_eq!((service.name.as_str(), service.namespace.as_str()), ("danm-webhook", "kube-system"));
    service.path.clone().unwrap()
}

fn registrations() -> Vec<Registration> {
    let mut out = Vec::new();
    for doc in documents(WEBHOOKS) {
        match doc["kind"].as_str().unwrap() {
            "MutatingWebhookConfiguration" => {
                let config: MutatingWebhookConfiguration = serde_yaml::from_value(doc).unwrap();
                for w in config.webhooks.unwrap() {
                    assert_eq!(w.admission_review_versions, ["v1"]);
                    out.push((
                        path(&w.client_config),
                        w.failure_policy.unwrap(),
                        w.side_effects,
                        w.timeout_seconds.unwrap(),
                        w.rules.unwrap(),
                    ));
                }
            }
            "ValidatingWebhookConfiguration" => {
                let config: ValidatingWebhookConfiguration = serde_yaml::from_value(doc).unwrap();
                for w in config.webhooks.unwrap() {
                    assert_eq!(w.admission_review_versions, ["v1"]);
                    if path(&w.client_config) == POD_PATH {
                        let ns = w.namespace_selector.unwrap().match_expressions.unwrap();
                        assert!(
                            ns.iter().any(|e| e.values.as_ref().is_some_and(|v| v.contains(&"kube-system".into())))
                        );
                    }
                    out.push((
                        path(&w.client_config),
                        w.failure_policy.unwrap(),
                        w.side_effects,
                        w.timeout_seconds.unwrap(),
                        w.rules.unwrap(),
                    ));
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
    out
}

fn covers(regs: &[Registration], path: &str, resource: &str, operation: &str) -> bool {
    regs.iter().any(|(p, _, _, _, rules)| {
        p == path
            && rules.iter().any(|r| {
                r.resources.as_ref().is_some_and(|v| v.iter().any(|x| x == resource))
                    && r.operations.as_ref().is_some_and(|v| v.iter().any(|x| x == operation))
            })
    })
}

#[test]
fn every_path_is_registered_for_what_it_decides() {
    let regs = registrations();
    for (path, policy, side_effects, timeout, _) in &regs {
        assert!(PATHS.contains(&path.as_str()), "{path}");
        assert!(*timeout > 0 && *timeout < 30, "{path}: timeout {timeout}");
        assert!(["None", "NoneOnDryRun"].contains(&side_effects.as_str()), "{path}");
        let expected = if path == POD_PATH { "Ignore" } else { "Fail" };
        assert_eq!(policy, expected, "{path}");
    }
    for resource in ["danmnets", "tenantnetworks", "clusternetworks"] {
        assert!(covers(&regs, NETWORK_PATH, resource, "CREATE"), "{resource}");
        assert!(covers(&regs, NETWORK_PATH, resource, "UPDATE"), "{resource}");
        assert!(covers(&regs, NETWORK_DELETE_PATH, resource, "DELETE"), "{resource}");
    }
    assert!(covers(&regs, TENANT_CONFIG_PATH, "tenantconfigs", "CREATE"));
    assert!(covers(&regs, TENANT_CONFIG_PATH, "tenantconfigs", "UPDATE"));
    assert!(covers(&regs, POD_PATH, "pods", "CREATE"));
    assert!(covers(&regs, POD_PATH, "pods", "UPDATE"), "a changed interfaces annotation is judged too");
    // Side effects (VNI reservation and release) are skipped on dry runs, and only those paths have them.
    for (path, _, side_effects, _, _) in &regs {
        if path == NETWORK_PATH || path == NETWORK_DELETE_PATH {
            assert_eq!(side_effects, "NoneOnDryRun");
        }
    }
}

#[test]
fn the_cluster_role_grants_only_what_the_webhook_uses() {
    let role = documents(RBAC).into_iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    let rules = role["rules"].as_sequence().unwrap();
    let mut grants = Vec::new();
    for rule in rules {
        for resource in rule["resources"].as_sequence().unwrap() {
            for verb in rule["verbs"].as_sequence().unwrap() {
                grants.push(format!("{}/{}", resource.as_str().unwrap(), verb.as_str().unwrap()));
            }
        }
    }
    grants.sort();
    assert_eq!(
        grants,
        [
            "clusternetworks/get",
            "danmeps/list",
            "danmnets/get",
            "tenantconfigs/get",
            "tenantconfigs/list",
            "tenantconfigs/update",
            "tenantnetworks/get"
        ]
    );
}
