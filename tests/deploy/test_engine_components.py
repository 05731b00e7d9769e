"""The production overlay wires every service to its engine as the engine's operator serves it: journeys to
the ClickHouseInstallation's Service and the cluster its ON CLUSTER DDL names, each PostgreSQL DSN to the
CloudNativePG cluster with the role, database and password CloudNativePG manages, ingest to the NATS Service
and the JetStream stream it publishes to, decision to Redis and to one shared model registry, and
cert-manager's certificates into exactly the Secrets the tls component mounts. The network policies let each
client reach its engine and nobody else reach Redis or NATS."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.deploy.kustomize import render
from tools.service_settings import settings_classes
from wayline.common.registry import REGISTRY
from wayline_ingest.sinks.nats import StreamSpec
from wayline_journeys.store.topology import Topology

Doc = dict[str, Any]

# The macros the Altinity operator defines on every host of a ClickHouseInstallation (its generated
# `macros` configuration: the installation, the cluster, the shard and the replica the host is).
ALTINITY_MACROS = {"installation", "all-sharded-shard", "cluster", "shard", "replica"}
# Labels the operators put on the pods they create (they are not in the rendered output).
CNPG_POD_LABEL = "cnpg.io/cluster"
ALTINITY_POD_LABEL = "clickhouse.altinity.com/chi"


@pytest.fixture(scope="module")
def production() -> list[Doc]:
    return render("production")


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return doc


def server(docs: list[Doc], service: str) -> Doc:
    """The container of one of the suite's services."""
    (workload,) = [
        d for d in docs if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == service
    ]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(container)


def expanded(container: Doc, name: str) -> str:
    """Variable `name` as the process sees it: every $(VAR) it references replaced by `<VAR>`, which
    Kubernetes does only for variables defined above it in the list (a later one stays a literal `$(VAR)`)."""
    env = container["env"]
    position = next(i for i, e in enumerate(env) if e["name"] == name)
    value = str(env[position]["value"])
    earlier = {e["name"] for e in env[:position]}
    for reference in re.findall(r"\$\((\w+)\)", value):
        assert reference in earlier, f"{name} references $({reference}), which is not defined above it"
        value = value.replace(f"$({reference})", f"<{reference}>")
    return value


def secret_ref(container: Doc, name: str) -> tuple[str, str]:
    ref = next(e for e in container["env"] if e["name"] == name)["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def plain_env(container: Doc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def service_for(docs: list[Doc], host: str, port: int) -> Doc:
    """The Service a client's `host:port` reaches (by its name in the same namespace)."""
    service = one(docs, "Service", host)
    assert port in [p["port"] for p in service["spec"]["ports"]], f"{host} has no port {port}"
    return service


def selects(service: Doc, workload: Doc) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


# --- ClickHouse (Altinity) ----------------------------------------------------------------------------------


def test_journeys_reaches_the_clickhouse_installation_as_its_user(production: list[Doc]) -> None:
    installation = one(production, "ClickHouseInstallation")
    spec = installation["spec"]
    template_name = spec["defaults"]["templates"]["serviceTemplate"]
    (template,) = [t for t in spec["templates"]["serviceTemplates"] if t["name"] == template_name]
    service_name = template["generateName"].replace("{chi}", installation["metadata"]["name"])
    http_port = next(p["port"] for p in template["spec"]["ports"] if p["name"] == "http")

    journeys = server(production, "journeys")
    url = urlsplit(expanded(journeys, "WAYLINE_JOURNEYS_CLICKHOUSE_URL"))
    assert (url.scheme, url.hostname, url.port) == ("http", service_name, http_port)
    assert url.path == "/" + plain_env(journeys)["WAYLINE_JOURNEYS_CLICKHOUSE_DATABASE"]
    # The password in the URL is the one the installation gives that user, from the same Secret key.
    users = spec["configuration"]["users"]
    password_variable = re.fullmatch(r"<(\w+)>", url.password or "")
    assert password_variable is not None, "the password comes from a variable, not the manifest"
    assert secret_ref(journeys, password_variable[1]) == (
        users[f"{url.username}/password"]["valueFrom"]["secretKeyRef"]["name"],
        users[f"{url.username}/password"]["valueFrom"]["secretKeyRef"]["key"],
    )
    # journeys' pods may connect as that user (the operator's default is localhost only).
    assert users[f"{url.username}/networks/ip"] == ["::/0"]


def test_journeys_ddl_targets_a_replicated_sharded_cluster_the_installation_defines(
    production: list[Doc],
) -> None:
    installation = one(production, "ClickHouseInstallation")
    env = plain_env(server(production, "journeys"))
    topology = Topology(
        cluster=env["WAYLINE_JOURNEYS_CLICKHOUSE_CLUSTER"],
        database=env["WAYLINE_JOURNEYS_CLICKHOUSE_DATABASE"],
    )
    clusters = {c["name"]: c["layout"] for c in installation["spec"]["configuration"]["clusters"]}
    assert topology.cluster in clusters
    layout = clusters[topology.cluster]
    assert min(layout["shardsCount"], layout["replicasCount"]) >= 2, layout
    # The DDL journeys runs there: Replicated engines with the operator's macros, Distributed on this cluster.
    engine = topology.engine("events", "ReplacingMergeTree")
    assert engine.startswith("ReplicatedReplacingMergeTree(")
    assert set(re.findall(r"\{([\w-]+)\}", engine)) <= ALTINITY_MACROS
    assert (
        set(re.findall(r"\{([\w-]+)\}", topology.engine("override_cursors", sharded=False)))
        <= ALTINITY_MACROS
    )
    (distributed,) = topology.distributed("events", "anchor")
    assert f"Distributed('{topology.cluster}', '{topology.database}'" in distributed
    # Every host starts with journeys' database, which ON CLUSTER DDL needs on each of them.
    (pod_template,) = installation["spec"]["templates"]["podTemplates"]
    (container,) = pod_template["spec"]["containers"]
    assert plain_env(container)["CLICKHOUSE_DB"] == topology.database


def test_replication_and_on_cluster_ddl_have_a_keeper_quorum(production: list[Doc]) -> None:
    installation = one(production, "ClickHouseInstallation")
    keeper = one(production, "ClickHouseKeeperInstallation")
    (node,) = installation["spec"]["configuration"]["zookeeper"]["nodes"]
    # The operator serves a ClickHouseKeeperInstallation as Service keeper-<name> on the ZooKeeper port.
    assert (node["host"], node["port"]) == (f"keeper-{keeper['metadata']['name']}", 2181)
    (cluster,) = keeper["spec"]["configuration"]["clusters"]
    assert cluster["layout"]["replicasCount"] in (3, 5, 7)


# --- PostgreSQL (CloudNativePG) -----------------------------------------------------------------------------


def postgres_services() -> list[str]:
    """Every service with a PostgreSQL setting."""
    return sorted(
        name for name, settings in settings_classes().items() if "database_url" in settings.model_fields
    )


def test_every_service_with_a_database_setting_uses_its_own_cnpg_database_and_role(
    production: list[Doc],
) -> None:
    cluster = one(production, "Cluster")
    name = cluster["metadata"]["name"]
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {
        d["spec"]["name"]: d["spec"]
        for d in production
        if d["kind"] == "Database" and d["apiVersion"].startswith("postgresql.cnpg.io/")
    }
    services = postgres_services()
    assert {"gateway", "identity", "orchestrator", "decision", "ingest"} <= set(services)
    seen: set[tuple[str, str]] = set()
    for service in services:
        container = server(production, service)
        dsn = urlsplit(expanded(container, f"{REGISTRY[service].env_prefix}DATABASE_URL"))
        # The read-write Service CloudNativePG keeps on the primary, through every failover.
        assert (dsn.scheme, dsn.hostname, dsn.port) == ("postgresql", f"{name}-rw", 5432), service
        assert dsn.password is None, f"{service}: a password in the DSN"
        role, database = dsn.username or "", dsn.path.lstrip("/")
        assert (roles[role]["login"], roles[role]["ensure"]) == (True, "present"), service
        owner, cluster_name = databases[database]["owner"], databases[database]["cluster"]["name"]
        assert (owner, cluster_name) == (role, name), service
        # libpq reads the password from PGPASSWORD: the Secret CloudNativePG sets the role's password from.
        assert secret_ref(container, "PGPASSWORD") == (roles[role]["passwordSecret"]["name"], "password"), (
            service
        )
        seen.add((role, database))
    assert len(seen) == len(services), "two services share a role or a database"


def test_every_postgres_client_verifies_the_server_against_the_cnpg_ca(production: list[Doc]) -> None:
    cluster = one(production, "Cluster")
    for service in postgres_services():
        (workload,) = [
            d
            for d in production
            if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == service
        ]
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        query = parse_qs(urlsplit(expanded(container, f"{REGISTRY[service].env_prefix}DATABASE_URL")).query)
        assert query["sslmode"] == ["verify-ca"], service
        (root_cert,) = query["sslrootcert"]
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        mounted = {
            m["mountPath"]: secrets[m["name"]] for m in container["volumeMounts"] if m["name"] in secrets
        }
        # CloudNativePG's own CA Secret for the cluster's server certificates.
        assert mounted[root_cert.rsplit("/", 1)[0]] == f"{cluster['metadata']['name']}-ca", service


def test_postgres_backups_are_continuous_and_scheduled(production: list[Doc]) -> None:
    cluster = one(production, "Cluster")
    store = cluster["spec"]["backup"]["barmanObjectStore"]
    assert store["destinationPath"]
    assert store["wal"]
    scheduled = one(production, "ScheduledBackup")
    assert scheduled["spec"]["cluster"]["name"] == cluster["metadata"]["name"]


# --- NATS JetStream -----------------------------------------------------------------------------------------


def test_ingest_publishes_through_the_nats_service_to_the_stream_nack_manages(production: list[Doc]) -> None:
    env = plain_env(server(production, "ingest"))
    url = urlsplit(env["WAYLINE_INGEST_NATS_URL"])
    assert url.scheme == "nats"
    assert url.hostname
    assert url.port
    nats = one(production, "StatefulSet", "nats")
    assert selects(service_for(production, url.hostname, url.port), nats)

    stream = one(production, "Stream")["spec"]
    spec = StreamSpec(name=env["WAYLINE_INGEST_NATS_STREAM"])
    # The stream ingest would create (same name, subjects and policies), replicated across the servers.
    assert stream["name"] == spec.name
    assert stream["subjects"] == [f"{spec.subject_prefix}.>"]
    assert (stream["storage"], stream["retention"], stream["discard"]) == ("file", "limits", "new")
    assert 3 <= stream["replicas"] <= nats["spec"]["replicas"]
    assert stream["servers"] == [env["WAYLINE_INGEST_NATS_URL"]]


def test_nats_servers_route_to_each_other_and_probe_the_monitoring_port(production: list[Doc]) -> None:
    nats = one(production, "StatefulSet", "nats")
    headless = one(production, "Service", nats["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert selects(headless, nats)
    config_volume = next(v for v in nats["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    config = one(production, "ConfigMap", config_volume["configMap"]["name"])["data"]["nats.conf"]
    # nats.conf is JSON but for its environment reference ($SERVER_NAME).
    conf = json.loads(config.replace("$SERVER_NAME", '"$SERVER_NAME"'))
    replicas = nats["spec"]["replicas"]
    assert sorted(conf["cluster"]["routes"]) == [
        f"nats://{nats['metadata']['name']}-{i}.{headless['metadata']['name']}:6222" for i in range(replicas)
    ]
    assert conf["jetstream"]["store_dir"] == "/data"
    (container,) = nats["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["monitor"] == conf["http_port"] == 8222
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert (check["port"], check["path"].split("?")[0]) == ("monitor", "/healthz"), probe
    claims = {c["metadata"]["name"] for c in nats["spec"]["volumeClaimTemplates"]}
    assert any(m["mountPath"] == "/data" and m["name"] in claims for m in container["volumeMounts"])


# --- Redis and the model registry ---------------------------------------------------------------------------


def test_decision_shares_its_online_features_in_the_redis_it_authenticates_to(production: list[Doc]) -> None:
    decision = server(production, "decision")
    assert plain_env(decision)["WAYLINE_DECISION_FEATURE_STATE"] == "redis"
    url = urlsplit(expanded(decision, "WAYLINE_DECISION_REDIS_URL"))
    assert url.scheme == "redis"
    assert url.hostname
    assert url.port
    redis = one(production, "StatefulSet", "redis")
    assert selects(service_for(production, url.hostname, url.port), redis)
    (redis_container,) = redis["spec"]["template"]["spec"]["containers"]
    password_variable = re.fullmatch(r"<(\w+)>", url.password or "")
    assert password_variable is not None
    assert secret_ref(decision, password_variable[1]) == secret_ref(redis_container, "REDIS_PASSWORD")
    args = redis_container["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    # decision's setting requires it: an evicted person would lose features silently.
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"


def test_every_decision_replica_mounts_one_shared_registry(production: list[Doc]) -> None:
    decision = one(production, "Deployment", "decision")
    pod = decision["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    registry_dir = plain_env(container)["WAYLINE_DECISION_REGISTRY_DIR"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == registry_dir]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = one(production, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    # Several pods on several nodes mount it at once (decision scales with its HorizontalPodAutoscaler).
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert one(production, "HorizontalPodAutoscaler", "decision")["spec"]["maxReplicas"] > 1


def test_ingest_spools_on_a_volume_of_its_own_per_replica(production: list[Doc]) -> None:
    ingest = one(production, "StatefulSet", "ingest")
    assert ingest["spec"]["replicas"] >= 2
    (container,) = ingest["spec"]["template"]["spec"]["containers"]
    (config,) = [
        d
        for d in production
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("wayline-config")
    ]
    data_dir = config["data"]["WAYLINE_DATA_DIR"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == data_dir]
    (claim,) = [c for c in ingest["spec"]["volumeClaimTemplates"] if c["metadata"]["name"] == mount["name"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


# --- Certificates (cert-manager) ----------------------------------------------------------------------------


def mounted_tls_secrets(docs: list[Doc]) -> dict[str, set[str]]:
    """Per Secret the tls component mounts, the services whose pods mount it."""
    mounts: dict[str, set[str]] = {}
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet") or doc["metadata"]["name"] not in REGISTRY:
            continue
        for volume in doc["spec"]["template"]["spec"]["volumes"]:
            if volume["name"] in ("tls", "public-tls"):
                mounts.setdefault(volume["secret"]["secretName"], set()).add(doc["metadata"]["name"])
    return mounts


def test_certificates_fill_exactly_the_secrets_the_tls_component_mounts(production: list[Doc]) -> None:
    certificates = {c["spec"]["secretName"]: c["spec"] for c in production if c["kind"] == "Certificate"}
    mounts = mounted_tls_secrets(production)
    assert set(certificates) == set(mounts) == {"wayline-tls", "wayline-gateway-tls"}
    issuers = {
        (d["kind"], d["metadata"]["name"]) for d in production if d["kind"] in ("Issuer", "ClusterIssuer")
    }
    for certificate in certificates.values():
        assert (certificate["issuerRef"]["kind"], certificate["issuerRef"]["name"]) in issuers


def test_the_internal_certificate_serves_and_authenticates_every_service(production: list[Doc]) -> None:
    internal = next(
        c["spec"]
        for c in production
        if c["kind"] == "Certificate" and c["spec"]["secretName"] == "wayline-tls"
    )
    assert mounted_tls_secrets(production)["wayline-tls"] == set(REGISTRY)
    services = [
        d["metadata"]["name"]
        for d in production
        if d["kind"] == "Service" and d["metadata"]["labels"].get("app.kubernetes.io/part-of") == "wayline"
    ]
    assert sorted(services) == sorted(REGISTRY)
    # Peers dial `<service>:<port>`: the certificate must carry each name as dialled.
    assert set(services) <= set(internal["dnsNames"])
    assert {"server auth", "client auth"} <= set(internal["usages"])
    public = next(
        c["spec"]
        for c in production
        if c["kind"] == "Certificate" and c["spec"]["secretName"] == "wayline-gateway-tls"
    )
    assert "gateway" in public["dnsNames"]
    assert "server auth" in public["usages"]


# --- Network policies ---------------------------------------------------------------------------------------


def matches(selector: Doc, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"])
        if expression["operator"] == "In" and present not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and present in expression["values"]:
            return False
        if expression["operator"] == "Exists" and present is None:
            return False
    return True


def peer_allowed(peers: list[Doc] | None, labels: dict[str, str]) -> bool:
    """Whether a rule's `from`/`to` admits a pod of the same namespace with `labels`."""
    if not peers:
        return True
    for peer in peers:
        namespaces = peer.get("namespaceSelector")
        if namespaces is not None and namespaces != {}:
            continue  # another namespace's pods (the suite and its engines share one)
        if "podSelector" in peer and matches(peer["podSelector"], labels):
            return True
        if "podSelector" not in peer and namespaces == {}:
            return True
    return False


def port_allowed(ports: list[Doc] | None, port: int) -> bool:
    return not ports or any(p.get("port") == port for p in ports)


def policies(docs: list[Doc], labels: dict[str, str], direction: str) -> Iterator[Doc]:
    for doc in docs:
        if (
            doc["kind"] == "NetworkPolicy"
            and matches(doc["spec"]["podSelector"], labels)
            and direction in doc["spec"].get("policyTypes", ["Ingress"])
        ):
            yield doc


def reachable(docs: list[Doc], client: dict[str, str], target: dict[str, str], port: int) -> bool:
    """Whether the policies let a pod with labels `client` open `port` on a pod with labels `target`."""
    ingress = list(policies(docs, target, "Ingress"))
    egress = list(policies(docs, client, "Egress"))
    ingress_ok = not ingress or any(
        peer_allowed(rule.get("from"), client) and port_allowed(rule.get("ports"), port)
        for policy in ingress
        for rule in policy["spec"].get("ingress", [])
    )
    egress_ok = not egress or any(
        peer_allowed(rule.get("to"), target) and port_allowed(rule.get("ports"), port)
        for policy in egress
        for rule in policy["spec"].get("egress", [])
    )
    return ingress_ok and egress_ok


def pod_labels(docs: list[Doc], kind: str, name: str) -> dict[str, str]:
    return dict(one(docs, kind, name)["spec"]["template"]["metadata"]["labels"])


def test_each_engine_is_reachable_by_its_clients_and_redis_and_nats_by_no_one_else(
    production: list[Doc],
) -> None:
    cluster = one(production, "Cluster")["metadata"]["name"]
    installation = one(production, "ClickHouseInstallation")["metadata"]["name"]
    postgres = {CNPG_POD_LABEL: cluster}
    clickhouse = {ALTINITY_POD_LABEL: installation}
    nats = pod_labels(production, "StatefulSet", "nats")
    redis = pod_labels(production, "StatefulSet", "redis")
    services = {
        d["metadata"]["name"]: dict(d["spec"]["template"]["metadata"]["labels"])
        for d in production
        if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] in REGISTRY
    }
    for service in postgres_services():
        assert reachable(production, services[service], postgres, 5432), service
    assert reachable(production, services["journeys"], clickhouse, 8123)
    assert reachable(production, services["ingest"], nats, 4222)
    assert reachable(production, services["decision"], redis, 6379)
    # The NATS servers route to each other.
    assert reachable(production, nats, nats, 6222)
    for service in set(services) - {"decision"}:
        assert not reachable(production, services[service], redis, 6379), service
    for service in set(services) - {"ingest"}:
        assert not reachable(production, services[service], nats, 4222), service


# --- The services accept what they are given ----------------------------------------------------------------


def process_environment(docs: list[Doc], container: Doc) -> dict[str, str]:
    """What the container's process sees: the shared ConfigMap, then its own variables in order, Secrets and
    pod fields as placeholders and $(VAR) references expanded as Kubernetes does."""
    (config,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("wayline-config")
    ]
    environment = dict(config["data"])
    for variable in container["env"]:
        if "value" in variable:
            environment[variable["name"]] = expanded(container, variable["name"])
        elif "secretKeyRef" in variable["valueFrom"]:
            ref = variable["valueFrom"]["secretKeyRef"]
            environment[variable["name"]] = f"{ref['name']}-{ref['key']}"
        else:
            environment[variable["name"]] = "pod-field"
    return environment


@pytest.mark.parametrize("service", sorted(REGISTRY))
def test_every_service_accepts_the_settings_production_gives_it(
    production: list[Doc], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("WAYLINE_", "OTEL_")):
            monkeypatch.delenv(name)
    for name, value in process_environment(production, server(production, service)).items():
        # The certificates exist only in the pod (test_tls_component checks they are mounted).
        if not name.startswith("WAYLINE_TLS_"):
            monkeypatch.setenv(name, value)
    settings = settings_classes()[service]()  # validation errors fail the test
    fields = settings.model_dump()
    if "database_url" in fields:
        assert fields["database_url"] is not None, service
    if service == "decision":
        assert (fields["feature_state"], str(fields["registry_dir"])) == (
            "redis",
            "/var/lib/wayline-registry",
        )
    if service == "ingest":
        assert fields["nats_url"] == "nats://nats:4222"
    if service == "journeys":
        assert (fields["clickhouse_cluster"], fields["clickhouse_database"]) == ("wayline", "wayline")
