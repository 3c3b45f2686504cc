// specIds: users, groups and subordinate id ranges, parsed from passwd/group/subuid text (pure).

/** One line of /etc/passwd. */
export interface PasswdEntry {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

/** One line of /etc/group. */
export interface GroupEntry {
  readonly name: string
  readonly gid: number
  readonly members: ReadonlyArray<string>
}

/** A user's first range in /etc/subuid or /etc/subgid. */
export interface SubidRange {
  readonly start: number
  readonly count: number
}

/** Why a user spec could not be resolved: what was wrong and how to fix it. */
export interface IdProblem {
  readonly reason: string
  readonly fix: string
}

// uid_t is 32 bits and (uid_t)-1 means "unchanged" to the kernel, so it is never a real id
const MAX_ID = 4294967294

const parseId = (text: string): number | undefined => {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined
  const n = Number(text)
  return n <= MAX_ID ? n : undefined
}

// NIS compat lines (+name, -name) and comments are not entries
const entryLines = (text: string): ReadonlyArray<ReadonlyArray<string>> =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith("+") && !l.startsWith("-"))
    .map((l) => l.split(":"))

/** Parses /etc/passwd text; malformed lines are skipped, as libc does. */
export const parsePasswd = (text: string): ReadonlyArray<PasswdEntry> =>
  entryLines(text).flatMap(([name, , uid, gid]) => {
    const u = parseId(uid ?? "")
    const g = parseId(gid ?? "")
    return name && u !== undefined && g !== undefined ? [{ name, uid: u, gid: g }] : []
  })

/** Parses /etc/group text; malformed lines are skipped. */
export const parseGroup = (text: string): ReadonlyArray<GroupEntry> =>
  entryLines(text).flatMap(([name, , gid, members]) => {
    const g = parseId(gid ?? "")
    return name && g !== undefined
      ? [{ name, gid: g, members: (members ?? "").split(",").map((m) => m.trim()).filter((m) => m !== "") }]
      : []
  })

/** The first subordinate range of a user in /etc/subuid or /etc/subgid text; lines may name the user or its id. */
export const firstSubidRange = (text: string, user: { readonly name: string; readonly id: number }): SubidRange | undefined => {
  for (const [who, start, count] of entryLines(text)) {
    if (who !== user.name && who !== String(user.id)) continue
    const s = parseId(start ?? "")
    const c = parseId(count ?? "")
    if (s !== undefined && c !== undefined && c > 0) return { start: s, count: c }
  }
  return undefined
}

/** The files a user spec is resolved against; undefined means the file does not exist. */
export interface IdFiles {
  readonly passwd: string | undefined
  readonly group: string | undefined
  /** How to name the files in messages (the rootfs paths). */
  readonly passwdPath: string
  readonly groupPath: string
}

/** A resolved process user. */
export interface ResolvedUser {
  readonly uid: number
  readonly gid: number
  readonly additionalGids: ReadonlyArray<number>
}

/**
 * Resolves an image's User ("name", "uid", "uid:gid", "name:group", ...) the way Docker does:
 * a name must be in passwd, a group name in group; a numeric uid not in passwd gets gid 0;
 * without an explicit group, the groups listing the user become additionalGids.
 */
export const resolveUser = (spec: string, files: IdFiles): ResolvedUser | IdProblem => {
  const colon = spec.indexOf(":")
  const userPart = colon < 0 ? spec : spec.slice(0, colon)
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1)
  if (userPart === "" || groupPart === "")
    return { reason: "a user is written NAME, UID, NAME:GROUP or UID:GID, with neither part empty", fix: "fix the image's User or override it" }
  const passwd = files.passwd === undefined ? undefined : parsePasswd(files.passwd)
  const groups = files.group === undefined ? undefined : parseGroup(files.group)

  const numericUid = parseId(userPart)
  let entry: PasswdEntry | undefined
  if (numericUid === undefined) {
    if (passwd === undefined)
      return { reason: `the image runs as user "${userPart}" but ${files.passwdPath} does not exist`, fix: "use a numeric uid (UID or UID:GID) or add the user to the image" }
    entry = passwd.find((p) => p.name === userPart)
    if (!entry) return { reason: `no user "${userPart}" in ${files.passwdPath}`, fix: "use a user that exists in the image, or a numeric uid" }
  } else {
    entry = passwd?.find((p) => p.uid === numericUid)
  }
  const uid = numericUid ?? entry?.uid ?? 0

  let gid = entry?.gid ?? 0
  if (groupPart !== undefined) {
    const numericGid = parseId(groupPart)
    if (numericGid !== undefined) gid = numericGid
    else {
      if (groups === undefined)
        return { reason: `the image runs as group "${groupPart}" but ${files.groupPath} does not exist`, fix: "use a numeric gid or add the group to the image" }
      const group = groups.find((g) => g.name === groupPart)
      if (!group) return { reason: `no group "${groupPart}" in ${files.groupPath}`, fix: "use a group that exists in the image, or a numeric gid" }
      gid = group.gid
    }
  }

  // an explicit group replaces the supplementary groups too (docker run --user u:g does the same)
  const additionalGids =
    groupPart === undefined && entry && groups
      ? [...new Set(groups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid))]
      : []
  return { uid, gid, additionalGids }
}

/** True when resolveUser failed. */
export const isIdProblem = (r: ResolvedUser | IdProblem): r is IdProblem => "reason" in r
