// berth-trim.node: a Node-API addon with one function, trim(), which calls glibc's malloc_trim(0)
// in berthd's own process. After a collection has freed what pods and containers held, glibc keeps
// the pages those frees left in the middle of its heap (only the top is given back by itself);
// malloc_trim(0) gives back every whole free page (madvise MADV_DONTNEED). Loaded by
// oci-runtime/foundation/malloc-trim.ts, called by cri-server/idle-gc.ts after its collections.
//
// No Node headers are needed: the few Node-API declarations below are the stable C ABI that the
// node binary exports (js_native_api.h, Node-API version 1).
#include <malloc.h>
#include <stddef.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok is 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

napi_status napi_create_function(napi_env env, const char *utf8name, size_t length, napi_callback cb, void *data, napi_value *result);
napi_status napi_set_named_property(napi_env env, napi_value object, const char *utf8name, napi_value value);
napi_status napi_get_boolean(napi_env env, int value, napi_value *result);

/* trim(): true when memory was given back to the system. */
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result = NULL;
  napi_get_boolean(env, malloc_trim(0) != 0, &result);
  return result;
}

/* The module's exports, as Node-API's NAPI_MODULE_INIT names its entry point. */
napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "trim", (size_t)-1, trim, NULL, &fn) == 0) napi_set_named_property(env, exports, "trim", fn);
  return exports;
}

/* The Node-API version the module was written for. */
int node_api_module_get_api_version_v1(void) { return 1; }
