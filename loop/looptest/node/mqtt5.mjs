// mqtt5.mjs: MQTT.js (the npm "mqtt" package, unmodified) speaking MQTT 5
// (protocolVersion: 5) to a broker URL given as argv[2] (mqtt://host:port
// or ws://host:port/mqtt). Prints "ok <step>" per step; exits 1 on the
// first failure and after 30 s whatever happens.
import mqtt from "mqtt";

const url = process.argv[2];
setTimeout(() => { console.error("timeout"); process.exit(1); }, 30000).unref();
const opts = (id, extra) => ({ clientId: id, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...extra });

function check(cond, what) {
  if (!cond) throw new Error(what);
}

// next resolves with the next message on client c matching topic.
function next(c, topic) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no message on ${topic}`)), 5000);
    const on = (tp, payload, packet) => {
      if (tp !== topic) return;
      clearTimeout(t);
      c.removeListener("message", on);
      resolve({ payload: payload.toString(), packet });
    };
    c.on("message", on);
  });
}

async function main() {
  const sub = await mqtt.connectAsync(url, opts("node5-sub", { clean: true, properties: { topicAliasMaximum: 10 } }));
  const pub = await mqtt.connectAsync(url, opts("node5-pub", { clean: true, autoUseTopicAlias: true }));
  console.log("ok connect");

  await sub.subscribeAsync("node5/#", { qos: 2, properties: { subscriptionIdentifier: 5 } });
  for (const qos of [0, 1, 2]) {
    const p = next(sub, `node5/q${qos}`);
    await pub.publishAsync(`node5/q${qos}`, `hello ${qos}`, {
      qos, properties: { userProperties: { who: "node", n: `${qos}` }, contentType: "text/plain" },
    });
    const m = await p;
    check(m.payload === `hello ${qos}`, `payload at QoS ${qos}`);
    check(m.packet.qos === qos, `delivered at QoS ${m.packet.qos}, published at ${qos}`);
    const pr = m.packet.properties || {};
    check(pr.userProperties && pr.userProperties.who === "node" && pr.userProperties.n === `${qos}`, `user properties ${JSON.stringify(pr)}`);
    check(pr.contentType === "text/plain", `content type ${JSON.stringify(pr)}`);
    const sid = Array.isArray(pr.subscriptionIdentifier) ? pr.subscriptionIdentifier[0] : pr.subscriptionIdentifier;
    check(sid === 5, `subscription identifier ${JSON.stringify(pr)}`);
  }
  console.log("ok properties");

  // Topic aliases both ways: the publisher sends the alias after the
  // first message; the subscriber (topic alias maximum 10) gets aliases.
  for (let i = 0; i < 3; i++) {
    const p = next(sub, "node5/alias");
    await pub.publishAsync("node5/alias", `a${i}`, { qos: 1, properties: { topicAlias: 1 } });
    check((await p).payload === `a${i}`, `aliased message ${i}`);
  }
  console.log("ok aliases");

  // Shared subscription: each message to exactly one of two members.
  const w1 = await mqtt.connectAsync(url, opts("node5-w1", { clean: true }));
  const w2 = await mqtt.connectAsync(url, opts("node5-w2", { clean: true }));
  const seen = new Map();
  const n = 40;
  const done = new Promise((resolve, reject) => {
    for (const [name, w] of [["w1", w1], ["w2", w2]]) {
      w.on("message", (tp, payload) => {
        const k = payload.toString();
        if (seen.has(k)) reject(new Error(`${k} to ${seen.get(k)} and ${name}`));
        seen.set(k, name);
        if (seen.size === n) resolve();
      });
    }
  });
  await w1.subscribeAsync("$share/node5g/node5w/+", { qos: 1 });
  await w2.subscribeAsync("$share/node5g/node5w/+", { qos: 1 });
  for (let i = 0; i < n; i++) await pub.publishAsync("node5w/x", `${i}`, { qos: 1 });
  await done;
  const names = new Set(seen.values());
  check(names.size === 2, `both members got work: ${[...names]}`);
  await w1.endAsync();
  await w2.endAsync();
  console.log("ok shared");

  // Request/response between two MQTT 5 clients through the broker.
  sub.on("message", (tp, payload, packet) => {
    if (tp !== "node5/req") return;
    const pr = packet.properties || {};
    sub.publish(pr.responseTopic, `re: ${payload}`, { qos: 1, properties: { correlationData: pr.correlationData } });
  });
  await pub.subscribeAsync("node5r/me", { qos: 1 });
  const pr = next(pub, "node5r/me");
  await pub.publishAsync("node5/req", "hi", { qos: 1, properties: { responseTopic: "node5r/me", correlationData: Buffer.from("c-1") } });
  const rep = await pr;
  check(rep.payload === "re: hi", `reply ${rep.payload}`);
  check(rep.packet.properties && Buffer.from(rep.packet.properties.correlationData).toString() === "c-1", "correlation data");
  console.log("ok request");

  // Session expiry: a session with an interval keeps QoS 1 messages.
  let away = await mqtt.connectAsync(url, opts("node5-away", { clean: true, properties: { sessionExpiryInterval: 300 } }));
  await away.subscribeAsync("node5a/t", { qos: 1 });
  await away.endAsync();
  await pub.publishAsync("node5a/t", "while you were out", { qos: 1 });
  away = mqtt.connect(url, opts("node5-away", { clean: false, properties: { sessionExpiryInterval: 300 } }));
  const pa = next(away, "node5a/t");
  const sp = await new Promise((resolve, reject) => {
    away.once("connect", (ack) => resolve(ack.sessionPresent));
    away.once("error", reject);
  });
  check(sp === true, "session present on return");
  check((await pa).payload === "while you were out", "queued message delivered");
  await away.endAsync();
  console.log("ok session");

  await sub.endAsync();
  await pub.endAsync();
  console.log("ok done");
}

main().catch((err) => { console.error("FAIL", err && err.stack ? err.stack : err); process.exit(1); });
