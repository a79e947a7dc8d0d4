// mqtt.mjs: MQTT.js (the npm "mqtt" package, unmodified, MQTT 3.1.1)
// against a broker URL given as argv[2] (mqtt://host:port or
// ws://host:port/mqtt). Prints "ok <step>" per step; exits 1 on the first
// failure and after 30 s whatever happens.
import mqtt from "mqtt";

const url = process.argv[2];
setTimeout(() => { console.error("timeout"); process.exit(1); }, 30000).unref();
const opts = (id, extra) => ({ clientId: id, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...extra });

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
  const sub = await mqtt.connectAsync(url, opts("node-sub", { clean: true }));
  const pub = await mqtt.connectAsync(url, opts("node-pub", { clean: true }));
  console.log("ok connect");

  await sub.subscribeAsync("node/#", { qos: 2 });
  for (const qos of [0, 1, 2]) {
    const p = next(sub, `node/q${qos}`);
    await pub.publishAsync(`node/q${qos}`, `hello ${qos}`, { qos });
    const m = await p;
    check(m.payload === `hello ${qos}`, `payload at QoS ${qos}`);
    check(m.packet.qos === qos, `delivered at QoS ${m.packet.qos}, published at ${qos}`);
  }
  console.log("ok qos");

  const big = "b".repeat(200 * 1024);
  const pb = next(sub, "node/big");
  await pub.publishAsync("node/big", big, { qos: 1 });
  check((await pb).payload === big, "200 KiB payload");
  console.log("ok big");

  // In order, every one, at QoS 1.
  const n = 500;
  const got = [];
  const all = new Promise((resolve) => {
    sub.on("message", (tp, payload) => {
      if (tp === "node/seq") {
        got.push(payload.toString());
        if (got.length === n) resolve();
      }
    });
  });
  for (let i = 0; i < n; i++) pub.publish("node/seq", `${i}`, { qos: 1 });
  await all;
  got.forEach((v, i) => check(v === `${i}`, `message ${i} is ${v}`));
  console.log("ok ordered");

  // Retained: a later subscriber gets it with the retain flag.
  await pub.publishAsync("ret/x", "kept", { qos: 1, retain: true });
  const late = await mqtt.connectAsync(url, opts("node-late", { clean: true }));
  const pr = next(late, "ret/x");
  await late.subscribeAsync("ret/#", { qos: 1 });
  const r = await pr;
  check(r.payload === "kept" && r.packet.retain, "retained message with retain flag");
  await late.endAsync();
  console.log("ok retained");

  // Persistent session: QoS 1 messages published while away arrive on return.
  let away = await mqtt.connectAsync(url, opts("node-away", { clean: false }));
  await away.subscribeAsync("away/t", { qos: 1 });
  await away.endAsync();
  await pub.publishAsync("away/t", "while you were out", { qos: 1 });
  away = mqtt.connect(url, opts("node-away", { clean: false }));
  const pa = next(away, "away/t");
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
