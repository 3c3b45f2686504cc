// Ports: `exchange`, the request-and-answer a readiness poll makes with no process, against a real
// redis-server on loopback and against plain sockets for what redis will not do (stall, hang up).
import { suite } from "uvu"
import * as assert from "uvu/assert"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { createServer, type Server } from "node:net"
import { exchange, listening } from "../packages/dsl/src/Ports.ts"
import { freePort, pongWithin } from "./fixtures/harness.ts"

const t = suite("Ports")

const ping = "*1\r\n$4\r\nPING\r\n"
const line = (s: string) => s.includes("\r\n")

const serve = (onConnection: Parameters<typeof createServer>[1]) =>
  new Promise<{ server: Server; port: number }>((resolve) => {
    const server = createServer(onConnection)
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port }))
  })

t("a RESP PING to a real redis-server answers +PONG; nothing listening answers undefined", async () => {
  const port = await freePort()
  assert.is(await Effect.runPromise(exchange(port, ping, { complete: line })), undefined, "refused: no answer")
  const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" })
  try {
    assert.is(await pongWithin(port), "PONG", "redis-cli hears it")
    assert.is(await Effect.runPromise(exchange(port, ping, { complete: line })), "+PONG\r\n")
    // an inline command works too, and a wrong one gets redis's error, not a PONG
    assert.match((await Effect.runPromise(exchange(port, "NOSUCH\r\n", { complete: line }))) ?? "", /^-ERR unknown command/)
  } finally {
    redis.kill("SIGKILL")
  }
})

t("a server that takes the request and stays silent: what came (nothing) once the timeout passes", async () => {
  const { server, port } = await serve(() => {})
  try {
    const t0 = Date.now()
    assert.is(await Effect.runPromise(exchange(port, ping, { timeoutMs: 150, complete: line })), "")
    assert.ok(Date.now() - t0 < 1000, "bounded by the timeout")
    assert.is(await Effect.runPromise(listening(port)), true)
  } finally {
    server.close()
  }
})

t("an answer in pieces is gathered until complete; one that hangs up early gives what came", async () => {
  const { server, port } = await serve((socket) => {
    socket.once("data", () => {
      socket.write("+PO")
      setTimeout(() => socket.write("NG\r\n+extra\r\n"), 30)
    })
  })
  const { server: rude, port: rudePort } = await serve((socket) => socket.once("data", () => socket.end("+PO")))
  try {
    // complete, not the timeout, ends it: the server keeps the connection open
    const t0 = Date.now()
    assert.is(await Effect.runPromise(exchange(port, ping, { complete: line, timeoutMs: 5000 })), "+PONG\r\n+extra\r\n")
    assert.ok(Date.now() - t0 < 2000, `ended when complete (${Date.now() - t0} ms)`)
    assert.is(await Effect.runPromise(exchange(rudePort, ping, { complete: line })), "+PO")
  } finally {
    server.close()
    rude.close()
  }
})

t.run()
