//! Checks that the fake API server behaves as the real one does for the
//! calls kuul makes, using kube's client directly.

mod support;

use k8s_openapi::api::batch::v1::CronJob;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use support::fake_apiserver::FakeApiServer;

fn client(server: &FakeApiServer) -> kube::Client {
    let config = kube::Config::new(server.url().parse().expect("server URL"));
    kube::Client::try_from(config).expect("kube client")
}

fn cronjob(schedule: &str) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "backup", "namespace": "default"},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "job", "image": "registry.test/backup@sha256:00"}],
            }}}},
        },
    })
}

async fn apply(api: &Api<CronJob>, manager: &str, force: bool, body: Value) -> Result<CronJob, kube::Error> {
    let mut params = PatchParams::apply(manager);
    params.force = force;
    api.patch("backup", &params, &Patch::Apply(body)).await
}

fn status_code(error: kube::Error) -> u16 {
    match error {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn apply_by_two_managers_conflicts() {
    let server = FakeApiServer::start();
    let api: Api<CronJob> = Api::namespaced(client(&server), "default");
    apply(&api, "kuul", false, cronjob("0 3 * * *")).await.expect("first apply");

    let error = apply(&api, "someone-else", false, cronjob("0 4 * * *")).await.expect_err("conflicting apply");

    assert_eq!(status_code(error), 409);
}

#[tokio::test]
async fn apply_with_same_value_shares_field() {
    let server = FakeApiServer::start();
    let api: Api<CronJob> = Api::namespaced(client(&server), "default");
    apply(&api, "kuul", false, cronjob("0 3 * * *")).await.expect("first apply");

    let shared = apply(&api, "someone-else", false, cronjob("0 3 * * *")).await;

    assert!(shared.is_ok(), "{shared:?}");
}

#[tokio::test]
async fn forced_apply_takes_ownership() {
    let server = FakeApiServer::start();
    let api: Api<CronJob> = Api::namespaced(client(&server), "default");
    apply(&api, "kuul", false, cronjob("0 3 * * *")).await.expect("first apply");

    let forced = apply(&api, "someone-else", true, cronjob("0 4 * * *")).await.expect("forced apply");
    let again = apply(&api, "kuul", false, cronjob("0 3 * * *")).await;

    assert_eq!(forced.spec.expect("spec").schedule, "0 4 * * *");
    assert_eq!(status_code(again.expect_err("kuul no longer owns the schedule")), 409);
}

#[tokio::test]
async fn apply_drops_fields_no_longer_applied() {
    let server = FakeApiServer::start();
    let api: Api<CronJob> = Api::namespaced(client(&server), "default");
    let mut first = cronjob("0 3 * * *");
    first["spec"]["suspend"] = json!(true);
    apply(&api, "kuul", false, first).await.expect("first apply");

    let second = apply(&api, "kuul", false, cronjob("0 3 * * *")).await.expect("second apply");

    assert_eq!(second.spec.expect("spec").suspend, None);
}

#[tokio::test]
async fn dry_run_apply_stores_nothing() {
    let server = FakeApiServer::start();
    let api: Api<CronJob> = Api::namespaced(client(&server), "default");
    let mut params = PatchParams::apply("kuul");
    params.dry_run = true;

    api.patch("backup", &params, &Patch::Apply(cronjob("0 3 * * *"))).await.expect("dry run");

    assert_eq!(server.object("CronJob", "default", "backup"), None);
}

#[tokio::test]
async fn apply_into_missing_namespace_is_404() {
    let server = FakeApiServer::start();
    let api: Api<CronJob> = Api::namespaced(client(&server), "absent");
    let mut body = cronjob("0 3 * * *");
    body["metadata"]["namespace"] = json!("absent");

    let error = apply(&api, "kuul", false, body).await.expect_err("missing namespace");

    assert_eq!(status_code(error), 404);
}

#[tokio::test]
async fn apply_without_schedule_is_422() {
    let server = FakeApiServer::start();
    let api: Api<CronJob> = Api::namespaced(client(&server), "default");

    let error = apply(&api, "kuul", false, cronjob("")).await.expect_err("invalid CronJob");

    assert_eq!(status_code(error), 422);
}

#[tokio::test]
async fn list_filters_by_label_selector() {
    let server = FakeApiServer::start();
    for (name, managed_by) in [("a", "kuul"), ("b", "helm")] {
        let mut object = cronjob("0 3 * * *");
        object["metadata"]["name"] = json!(name);
        object["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": managed_by});
        server.insert(object);
    }
    let api: Api<CronJob> = Api::namespaced(client(&server), "default");

    let params = kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=kuul");
    let names: Vec<String> =
        api.list(&params).await.expect("list").items.into_iter().filter_map(|c| c.metadata.name).collect();

    assert_eq!(names, ["a"]);
}
