// Parsing CNI results (0.1.0/0.2.0 "ip4/ip6" form, 0.3.x/0.4.0 with ip
// "version", 1.x) into what the runtime needs: pod IPs, primary first.

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}

export interface CniIp {
  /** CIDR, e.g. "10.88.0.5/16". */
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniResult {
  cniVersion: string;
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: { dst: string; gw?: string }[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parses a plugin's result JSON; throws a plain Error on malformed input. */
export function parseResult(raw: unknown): CniResult {
  if (!isObject(raw)) throw new Error("result is not a JSON object");
  const cniVersion = typeof raw.cniVersion === "string" ? raw.cniVersion : "0.1.0";
  const routes: CniResult["routes"] = [];
  const ips: CniIp[] = [];
  const interfaces: CniInterface[] = [];
  if (cniVersion === "0.1.0" || cniVersion === "0.2.0" || (raw.ip4 !== undefined || raw.ip6 !== undefined)) {
    for (const key of ["ip4", "ip6"]) {
      const c = raw[key];
      if (!isObject(c)) continue;
      if (typeof c.ip !== "string") throw new Error(`result ${key}.ip is not a string`);
      ips.push({ address: c.ip, ...(typeof c.gateway === "string" ? { gateway: c.gateway } : {}) });
      if (Array.isArray(c.routes)) for (const r of c.routes) if (isObject(r) && typeof r.dst === "string") routes.push({ dst: r.dst, ...(typeof r.gw === "string" ? { gw: r.gw } : {}) });
    }
  } else {
    if (raw.interfaces !== undefined && !Array.isArray(raw.interfaces)) throw new Error("result interfaces is not an array");
    for (const i of (raw.interfaces as unknown[] | undefined) ?? []) {
      if (!isObject(i) || typeof i.name !== "string") throw new Error("result interface has no name");
      interfaces.push({
        name: i.name,
        ...(typeof i.mac === "string" ? { mac: i.mac } : {}),
        ...(typeof i.sandbox === "string" ? { sandbox: i.sandbox } : {}),
      });
    }
    if (raw.ips !== undefined && !Array.isArray(raw.ips)) throw new Error("result ips is not an array");
    for (const ip of (raw.ips as unknown[] | undefined) ?? []) {
      if (!isObject(ip) || typeof ip.address !== "string") throw new Error("result ip has no address");
      ips.push({
        address: ip.address,
        ...(typeof ip.gateway === "string" ? { gateway: ip.gateway } : {}),
        ...(typeof ip.interface === "number" ? { interface: ip.interface } : {}),
      });
    }
    if (Array.isArray(raw.routes)) for (const r of raw.routes) if (isObject(r) && typeof r.dst === "string") routes.push({ dst: r.dst, ...(typeof r.gw === "string" ? { gw: r.gw } : {}) });
  }
  return { cniVersion, interfaces, ips, routes, ...(isObject(raw.dns) ? { dns: raw.dns as CniResult["dns"] } : {}) };
}

const stripPrefix = (cidr: string) => cidr.split("/")[0]!;
const isV4 = (ip: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(ip);

/**
 * Pod IPs without prefix length: addresses on the pod's interface `ifName`
 * (or not tied to an interface), IPv4 before IPv6, otherwise in result order.
 * The first is the primary IP.
 */
export function podIps(result: CniResult, ifName = "eth0"): string[] {
  const picked = result.ips.filter((ip) => {
    if (ip.interface === undefined) return true;
    const iface = result.interfaces[ip.interface];
    return iface === undefined || iface.name === ifName;
  }).map((ip) => stripPrefix(ip.address));
  const unique = [...new Set(picked)];
  return [...unique.filter(isV4), ...unique.filter((ip) => !isV4(ip))];
}
