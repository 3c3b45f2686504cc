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
