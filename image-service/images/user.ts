// The image config's User: "1002", "www-data", "1003:users", "www-data:group".

/** uid when the user part is numeric, otherwise the username. */
export function parseImageUser(user: string | undefined): { uid?: number; username: string } {
  const u = (user ?? "").split(":")[0]!.trim();
  if (u === "") return { username: "" };
  if (/^[0-9]+$/.test(u)) return { uid: Number(u), username: "" };
  return { username: u };
}
