//! tollgate's own consumer contract with the Pact Broker, for what the official client's contract
//! lacks: environment-scoped can-i-deploy (true, false, null, with ignore), a 400 with an errors
//! object, a 401 with an empty body, a deployment record without an application instance made
//! as the controller makes it (first the environment's currently deployed versions, then the POST),
//! and an undeployment record (the currently deployed versions, then a merge patch of each), as
//! `record-undeployment` and a deleted Rollout's finalizer make it (Baz 2.0.0, which the gate
//! lets through and the controller finds already recorded).
//!
//! Running this test regenerates `tests/pacts/tollgate-Pact Broker.json` (committed, so a broker's
//! provider verification can use it); the pact_consumer mock server fails the test when a request
//! does not match or an interaction is never exercised.

use std::path::{Path, PathBuf};

use pact_consumer::prelude::*;
use pact_consumer::{each_like, json_pattern, like, term};

use crate::support::own_contract::exercise_own_contract;
use crate::support::pact_stub::{manifest_path, OWN_CONTRACT};

const HAL: &str = "application/hal+json;charset=utf-8";

fn matrix_answer(
    deployable: serde_json::Value,
    reason: &str,
    counts: (u64, u64, u64),
) -> JsonPattern {
    json_pattern!({
        "summary": {
            "deployable": deployable,
            "reason": like!(reason),
            "success": like!(counts.0),
            "failed": like!(counts.1),
            "unknown": like!(counts.2)
        },
        "notices": each_like!({ "type": like!("info"), "text": like!("a notice") }),
        "matrix": each_like!({
            "consumer": { "name": "Bar", "version": { "number": like!("4.5.6") } },
            "provider": { "name": "Foo", "version": { "number": like!("1.2.3") } },
            "verificationResult": { "success": like!(true), "verifiedAt": like!("2026-11-22T10:00:00+00:00") }
        })
    })
}

#[test]
fn own_consumer_contract() {
    // pact_consumer merges into a file that is already there (unless PACT_OVERWRITE, a process-wide
    // variable other tests of this binary would race with): write into an empty folder, then
    // swap the result in atomically, so the stub tests that serve the committed file never read
    // a half-written one.
    let dir = fresh_output_dir();
    let mut builder = PactBuilder::new("tollgate", "Pact Broker");
    builder.with_output_dir(&dir);
    let cid = |i: &mut pact_consumer::builders::InteractionBuilder, version: &str, env: &str| {
        i.request
            .get()
            .path("/matrix")
            .query_param("q[][pacticipant]", "Foo")
            .query_param("q[][version]", version)
            .query_param("latestby", "cvp")
            .query_param("environment", env);
    };
    builder
        .interaction(
            "a request to determine if Foo 1.2.3 can be deployed to the production environment",
            "",
            |mut i| {
                i.given("the pact for Foo version 1.2.3 has been successfully verified by the version of Bar deployed to production");
                cid(&mut i, "1.2.3", "production");
                i.response.ok().content_type(HAL).json_body(matrix_answer(
                    serde_json::json!(true),
                    "All required verification results are published and successful",
                    (1, 0, 0),
                ));
                i
            },
        )
        .interaction(
            "a request to determine if Foo 1.2.4 can be deployed to the production environment",
            "",
            |mut i| {
                i.given("the pact for Foo version 1.2.4 has failed verification by the version of Bar deployed to production");
                cid(&mut i, "1.2.4", "production");
                i.response.ok().content_type(HAL).json_body(matrix_answer(
                    serde_json::json!(false),
                    "The verification for the pact between Foo 1.2.4 and Bar 4.5.6 failed",
                    (0, 1, 0),
                ));
                i
            },
        )
        .interaction(
            "a request to determine if Foo 1.2.5 can be deployed to the production environment",
            "",
            |mut i| {
                i.given("the pact for Foo version 1.2.5 has not been verified by the version of Bar deployed to production");
                cid(&mut i, "1.2.5", "production");
                i.response.ok().content_type(HAL).json_body(json_pattern!({
                    "summary": {
                        "deployable": null,
                        "reason": like!("There is no verified pact between version 1.2.5 of Foo and the version of Bar currently in production"),
                        "success": like!(0),
                        "failed": like!(0),
                        "unknown": like!(1)
                    },
                    "notices": [],
                    "matrix": []
                }));
                i
            },
        )
        .interaction(
            "a request to determine if Foo 1.2.5 can be deployed to the production environment, ignoring Bar",
            "",
            |mut i| {
                i.given("the pact for Foo version 1.2.5 has not been verified by the version of Bar deployed to production");
                cid(&mut i, "1.2.5", "production");
                i.request.query_param("ignore[][pacticipant]", "Bar");
                i.response.ok().content_type(HAL).json_body(json_pattern!({
                    "summary": {
                        "deployable": true,
                        "reason": like!("All required verification results are published and successful"),
                        "success": like!(0),
                        "failed": like!(0),
                        "unknown": like!(0),
                        "ignored": like!(1)
                    },
                    "notices": [],
                    "matrix": each_like!({
                        "consumer": { "name": "Bar", "version": { "number": like!("4.5.6") } },
                        "provider": { "name": "Foo", "version": { "number": like!("1.2.5") } },
                        "ignored": true
                    })
                }));
                i
            },
        )
        .interaction(
            "a request to determine if Foo can be deployed to an environment that does not exist",
            "",
            |mut i| {
                cid(&mut i, "1.2.3", "nowhere");
                i.response.status(400).content_type(HAL).json_body(json_pattern!({
                    "errors": { "environment": ["Environment with name 'nowhere' does not exist"] }
                }));
                i
            },
        )
        // The Rollout of the undeployment e2e (tests/it/e2e_undeployment.rs) rolls out Baz
        // 2.0.0: the gate asks about it, then the controller finds it already deployed (the
        // currently-deployed interaction of Baz below, so no second record is posted), and
        // deleting the Rollout undeploys it (the same walk as `record-undeployment --version`).
        .interaction(
            "a request to determine if Baz 2.0.0 can be deployed to the production environment",
            "",
            |mut i| {
                i.given("the pact for Baz version 2.0.0 has been successfully verified by the version of Bar deployed to production");
                i.request
                    .get()
                    .path("/matrix")
                    .query_param("q[][pacticipant]", "Baz")
                    .query_param("q[][version]", "2.0.0")
                    .query_param("latestby", "cvp")
                    .query_param("environment", "production");
                i.response.ok().content_type(HAL).json_body(json_pattern!({
                    "summary": {
                        "deployable": true,
                        "reason": like!("All required verification results are published and successful"),
                        "success": like!(1),
                        "failed": like!(0),
                        "unknown": like!(0)
                    },
                    "notices": [],
                    "matrix": each_like!({
                        "consumer": { "name": "Bar", "version": { "number": like!("4.5.6") } },
                        "provider": { "name": "Baz", "version": { "number": like!("2.0.0") } },
                        "verificationResult": { "success": like!(true), "verifiedAt": like!("2026-11-22T10:00:00+00:00") }
                    })
                }));
                i
            },
        )
        .interaction("a can-i-deploy request with invalid credentials", "", |mut i| {
            cid(&mut i, "1.2.6", "production");
            i.request.header("Authorization", "Bearer expired-token");
            i.response.status(401);
            i
        })
        .interaction("a request for the index resource", "", |mut i| {
            i.given("the pb:pacticipant-version and pb:environments relations exist in the index resource");
            i.request.get().path("/").header("Accept", "application/hal+json");
            i.response.ok().content_type(HAL).json_body(json_pattern!({
                "_links": {
                    "pb:pacticipant-version": {
                        "href": term!("^.*/pacticipants/\\{pacticipant\\}/versions/\\{version\\}$", "/pacticipants/{pacticipant}/versions/{version}")
                    },
                    "pb:environments": {
                        "href": term!("^.*/environments$", "/environments")
                    }
                }
            }));
            i
        })
        // Before it records, the controller reads what the environment runs (an earlier attempt
        // may have been stored although its answer was lost): the list of environments, the one
        // named, and its currently deployed versions of the pacticipant.
        .interaction("a request to list the environments", "", |mut i| {
            i.given("an environment named production exists");
            i.request.get().path("/environments").header("Accept", "application/hal+json");
            i.response.ok().content_type(HAL).json_body(json_pattern!({
                "_embedded": {
                    "environments": each_like!({
                        "name": "production",
                        "uuid": like!("7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b"),
                        "_links": {
                            "self": {
                                "href": term!(
                                    "^.*/environments/[0-9a-f-]+$",
                                    "/environments/7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b"
                                )
                            }
                        }
                    })
                }
            }));
            i
        })
        .interaction("a request for the production environment", "", |mut i| {
            i.given("an environment named production exists");
            i.request
                .get()
                .path("/environments/7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b")
                .header("Accept", "application/hal+json");
            i.response.ok().content_type(HAL).json_body(json_pattern!({
                "_links": {
                    "pb:currently-deployed-deployed-versions": {
                        "href": term!(
                            "^.*/environments/[0-9a-f-]+/deployed-versions/currently-deployed$",
                            "/environments/7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b/deployed-versions/currently-deployed"
                        )
                    }
                }
            }));
            i
        })
        .interaction("a request for the versions of Foo currently deployed to production", "", |mut i| {
            i.given("no version of Foo is currently deployed to production");
            i.request
                .get()
                .path("/environments/7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b/deployed-versions/currently-deployed")
                .query_param("pacticipant", "Foo")
                .header("Accept", "application/hal+json");
            i.response.ok().content_type(HAL).json_body(json_pattern!({
                "_embedded": { "deployedVersions": [] }
            }));
            i
        })
        .interaction("a request for version 1.2.3 of Foo", "", |mut i| {
            i.given("version 1.2.3 of pacticipant Foo exists with a production environment available for deployment");
            i.request.get().path("/pacticipants/Foo/versions/1.2.3").header("Accept", "application/hal+json");
            i.response.ok().content_type(HAL).json_body(json_pattern!({
                "_links": {
                    "pb:record-deployment": [{
                        "name": "production",
                        "href": term!(
                            "^.*/pacticipants/Foo/versions/1\\.2\\.3/deployed-versions/environment/[0-9a-f-]+$",
                            "/pacticipants/Foo/versions/1.2.3/deployed-versions/environment/7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b"
                        )
                    }]
                }
            }));
            i
        })
        .interaction("a request to record a deployment without an application instance", "", |mut i| {
            i.given("version 1.2.3 of pacticipant Foo exists with a production environment available for deployment");
            i.request
                .post()
                .path("/pacticipants/Foo/versions/1.2.3/deployed-versions/environment/7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b")
                .header("Accept", "application/hal+json")
                .header("Content-Type", "application/json")
                .json_body(json_pattern!({}));
            i.response.status(201).content_type(HAL).json_body(json_pattern!({
                "uuid": like!("0b4f0f5e-5c1a-4f55-b6f8-8d7f6f2f1c11"),
                "currentlyDeployed": true
            }));
            i
        })
        // Recording an undeployment, as the official client does: the environment's currently
        // deployed versions of the pacticipant (Baz, so this query differs from Foo's above),
        // then a merge patch of the deployed version's own resource.
        .interaction("a request for the versions of Baz currently deployed to production", "", |mut i| {
            i.given("version 2.0.0 of Baz is currently deployed to production without an application instance");
            i.request
                .get()
                .path("/environments/7e8b3c40-4d0a-4a3d-9a0b-2b1d2f3e4a5b/deployed-versions/currently-deployed")
                .query_param("pacticipant", "Baz")
                .header("Accept", "application/hal+json");
            i.response.ok().content_type(HAL).json_body(json_pattern!({
                "_embedded": { "deployedVersions": [{
                    "currentlyDeployed": true,
                    "_embedded": { "version": { "number": like!("2.0.0") } },
                    "_links": { "self": { "href": term!(
                        "^.*/deployed-versions/[0-9a-f-]+$",
                        "/deployed-versions/5d1e9d7a-0b1c-4f5e-8a2b-3c4d5e6f7a8b"
                    ) } }
                }] }
            }));
            i
        })
        .interaction("a request to record the undeployment of Baz 2.0.0 from production", "", |mut i| {
            i.given("version 2.0.0 of Baz is currently deployed to production without an application instance");
            i.request
                .method("PATCH")
                .path("/deployed-versions/5d1e9d7a-0b1c-4f5e-8a2b-3c4d5e6f7a8b")
                .header("Accept", "application/hal+json")
                .header("Content-Type", "application/merge-patch+json")
                .json_body(json_pattern!({ "currentlyDeployed": false }));
            i.response.ok().content_type(HAL).json_body(json_pattern!({
                "currentlyDeployed": false,
                "undeployedAt": like!("2026-12-07T02:00:00+00:00"),
                "_embedded": { "version": { "number": like!("2.0.0") } }
            }));
            i
        });
    let server = builder.start_mock_server(None, None);
    let url = server.url().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(exercise_own_contract(&url));
    // Dropping the server checks that every interaction was used and writes the pact file.
    drop(server);
    let file_name = Path::new(OWN_CONTRACT).file_name().expect("a file name");
    let fresh = dir.join(file_name);
    assert!(fresh.is_file(), "{} was not written", fresh.display());
    let committed = manifest_path(OWN_CONTRACT);
    replace_atomically(&fresh, &committed);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        committed.is_file(),
        "{} was not written",
        committed.display()
    );
}

/// An empty folder of this test's own under the target directory.
fn fresh_output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("own-consumer-contract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("pact output folder");
    dir
}

/// Put `fresh`'s bytes at `target` with a rename from a sibling file (atomic for readers), and only
/// when they differ, so an unchanged contract leaves the checkout untouched.
fn replace_atomically(fresh: &Path, target: &Path) {
    let bytes = std::fs::read(fresh).expect("read the written pact");
    if std::fs::read(target).ok().as_deref() == Some(bytes.as_slice()) {
        return;
    }
    let tmp = target.with_extension(format!("json.tmp-{}", std::process::id()));
    std::fs::write(&tmp, &bytes).expect("write the pact beside the committed one");
    std::fs::rename(&tmp, target).expect("swap the pact in");
}
