// nats.mjs: nats.js (the npm "nats" package, unmodified) against a server
// given as argv[2] (host:port). Prints "ok <step>" per step; exits 1 on the
// first failure and after 30 s whatever happens.
import { connect, StringCodec, headers, AckPolicy } from "nats";

const server = process.argv[2];
const sc = StringCodec();
setTimeout(() => { console.error("timeout"); process.exit(1); }, 30000).unref();

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function main() {
  const nc = await connect({ servers: server, name: "nats.js-test" });
  check(nc.info && nc.info.server_id, "INFO has server_id");
  console.log("ok connect", nc.info.version);

  // Plain pub/sub, in order.
  const n = 2000;
  const sub = nc.subscribe("js.plain", { max: n });
  const got = (async () => {
    let i = 0;
    for await (const m of sub) {
      check(sc.decode(m.data) === `m${i}`, `message ${i} is ${sc.decode(m.data)}`);
      i++;
    }
    return i;
  })();
  await nc.flush();
  for (let i = 0; i < n; i++) nc.publish("js.plain", sc.encode(`m${i}`));
  check((await got) === n, "all plain messages");
  console.log("ok pubsub");

  // Headers.
  const hsub = nc.subscribe("js.hdr", { max: 1 });
  await nc.flush();
  const h = headers();
  h.set("X-Test", "yes");
  nc.publish("js.hdr", sc.encode("with headers"), { headers: h });
  for await (const m of hsub) {
    check(m.headers && m.headers.get("X-Test") === "yes", "header arrives");
    check(sc.decode(m.data) === "with headers", "payload with headers");
  }
  console.log("ok headers");

  // Request/reply.
  const svc = nc.subscribe("js.svc");
  (async () => { for await (const m of svc) m.respond(sc.encode("re:" + sc.decode(m.data))); })();
  await nc.flush();
  for (let i = 0; i < 50; i++) {
    const r = await nc.request("js.svc", sc.encode(`q${i}`), { timeout: 2000 });
    check(sc.decode(r.data) === `re:q${i}`, "reply matches");
  }
  console.log("ok request");

  // Queue group: every message once.
  let qn = 0;
  const members = [0, 1].map(() => nc.subscribe("js.q", { queue: "workers", callback: () => { qn++; } }));
  await nc.flush();
  for (let i = 0; i < 100; i++) nc.publish("js.q", sc.encode("w"));
  await nc.flush();
  const deadline = Date.now() + 5000;
  while (qn < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  check(qn === 100, `queue group got ${qn} of 100`);
  members.forEach((s) => s.unsubscribe());
  console.log("ok queue");

  // JetStream: stream, acked publishes, durable pull consumer, KV.
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: "NODE", subjects: ["node.>"] });
  const js = nc.jetstream();
  for (let i = 1; i <= 100; i++) {
    const pa = await js.publish("node.x", sc.encode(`j${i}`));
    check(pa.stream === "NODE" && pa.seq === i, `ack seq ${pa.seq}, want ${i}`);
  }
  await jsm.consumers.add("NODE", { durable_name: "pull", ack_policy: AckPolicy.Explicit });
  const c = await js.consumers.get("NODE", "pull");
  let seen = 0;
  while (seen < 100) {
    const batch = await c.fetch({ max_messages: 40, expires: 2000 });
    let k = 0;
    for await (const m of batch) {
      seen++;
      k++;
      check(sc.decode(m.data) === `j${m.seq}`, `stream message ${m.seq}`);
      m.ack();
    }
    check(k > 0, "fetch returned messages");
  }
  const ci = await c.info();
  check(ci.num_pending === 0, `num_pending ${ci.num_pending}`);
  console.log("ok jetstream");

  const kv = await js.views.kv("nodekv", { history: 5 });
  await kv.put("k", sc.encode("v1"));
  await kv.put("k", sc.encode("v2"));
  const e = await kv.get("k");
  check(e && sc.decode(e.value) === "v2" && e.revision === 2, "kv get latest");
  const hist = await kv.history({ key: "k" });
  let hn = 0;
  for await (const _ of hist) hn++;
  check(hn === 2, `kv history ${hn}`);
  console.log("ok kv");

  await nc.drain();
  console.log("ok done");
}

main().catch((err) => { console.error("FAIL", err && err.stack ? err.stack : err); process.exit(1); });
