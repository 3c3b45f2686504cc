// Ports: whether something already listens on a loopback port a recipe is about to serve on.
import * as Effect from "effect/Effect"
import { connect } from "node:net"
import { InvalidInput } from "@syscontainers/core/Errors"

/** Whether a TCP connection to host:port is accepted (something listens there), within `timeoutMs`. */
export const listening = (port: number, host = "127.0.0.1", timeoutMs = 500): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = connect({ host, port })
    const done = (yes: boolean) => {
      socket.destroy()
      resume(Effect.succeed(yes))
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    return Effect.sync(() => socket.destroy())
  })

/**
 * Fails with InvalidInput naming `option` when something already listens on 127.0.0.1:port: on the
 * host's network a server we start there could not bind, and a readiness probe would hear the
 * other one answer.
 */
export const portMustBeFree = (port: number, option = "--port"): Effect.Effect<void, InvalidInput> =>
  Effect.flatMap(listening(port), (busy) =>
    busy
      ? Effect.fail(new InvalidInput({ input: `${option} ${port}`, reason: `something already listens on 127.0.0.1:${port}`, fix: `pick a free port with ${option}, or stop what listens there` }))
      : Effect.void,
  )

/**
 * What a server on host:port answers to `request`: what it sends back until `complete` says that is
 * a whole answer, it closes the connection, or `timeoutMs` passes (then what came so far). Undefined
 * when nothing accepts the connection. A readiness poll made of these starts no process per try.
 */
export const exchange = (
  port: number,
  request: string,
  options: { readonly host?: string; readonly timeoutMs?: number; readonly complete?: (soFar: string) => boolean } = {},
): Effect.Effect<string | undefined> =>
  Effect.async<string | undefined>((resume) => {
    const socket = connect({ host: options.host ?? "127.0.0.1", port })
    let answer = ""
    let connected = false
    let finished = false
    const done = () => {
      if (finished) return
      finished = true
      socket.destroy()
      resume(Effect.succeed(connected ? answer : undefined))
    }
    socket.setEncoding("utf8")
    socket.setTimeout(options.timeoutMs ?? 500, done)
    socket.once("connect", () => {
      connected = true
      socket.write(request)
    })
    socket.on("data", (chunk: string) => {
      answer += chunk
      if (options.complete?.(answer)) done()
    })
    socket.once("end", done)
    socket.once("error", done)
    socket.once("close", done)
    return Effect.sync(() => socket.destroy())
  })
