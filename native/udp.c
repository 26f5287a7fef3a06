/*
 * ser_udp: UDP receive and send without node:dgram's per-datagram wrapping.
 *
 * node:dgram hands JavaScript each datagram in its own callback, with a Buffer made by
 * C++ (a 64 KiB allocation shrunk to the datagram), an `rinfo` object filled property by
 * property, and an async-hooks scope; a send goes through a request object. Measured on the
 * bench (docs/performance.md, rule 15), that wrapping cost about a tenth of an
 * authenticated REGISTER's CPU and a fifth of an OPTIONS'. Here one readiness event reads up
 * to BATCH datagrams with recvmmsg(2) into a buffer JavaScript owns and calls it once with
 * their count; lengths and source addresses go into an Int32Array it owns too. A send is one
 * sendto(2), its errno returned at once.
 *
 * Linux only (recvmmsg); src/net/udp-native.ts falls back to node:dgram when this addon is
 * missing or does not load.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* datagrams per recvmmsg call; each has a 64 KiB slot in the receive buffer */
#define BATCH 16
#define SLOT 65536
/* Int32 words per datagram in the meta array: length, port, family, unused, then the IPv4
   address (4 bytes as read from the packet) or the IPv6 address's text length. A slot
   holds the largest UDP payload, so no datagram is truncated. */
#define META 8
/* IPv6 source addresses as text (inet_ntop), one TEXT-byte slot per datagram after the
   BATCH data slots: formatting them in JavaScript could differ from node:dgram's */
#define TEXT 64
/* recvmmsg calls per readiness event, so one busy socket cannot starve the loop */
#define ROUNDS 2

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int closing;
  /* inside the JavaScript callback: a stop() there leaves the release to on_readable */
  int in_cb;
  napi_ref buf_ref, meta_ref, cb_ref, res_ref;
  napi_async_context actx;
  unsigned char *buf;
  int32_t *meta;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage from[BATCH];
} receiver_t;

#define CHECK(call)                                                                  \
  do {                                                                               \
    if ((call) != napi_ok) {                                                         \
      napi_throw_error(env, NULL, "ser_udp: " #call " failed");                      \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

/* err: a negative errno, as libuv's and node's errors carry it */
static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_value msg, code, e;
  char text[160];
  const char *name = uv_err_name(err);
  snprintf(text, sizeof text, "%s %s", syscall, name);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &e);
  napi_value errno_v, sc;
  napi_create_int32(env, err, &errno_v);
  napi_set_named_property(env, e, "errno", errno_v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, e, "syscall", sc);
  napi_throw(env, e);
  return NULL;
}

static int fill_addr(int af, const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (af == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1) return -1;
    *len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &a->sin_addr) != 1) return -1;
    *len = sizeof *a;
  }
  return 0;
}

/* open(af, ip, port, rcvbufMax) -> [fd, boundPort, rcvbuf] ; throws an errno error */
static napi_value sock_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t af, port, rcvmax;
  char ip[64];
  size_t iplen;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &af));
  CHECK(napi_get_value_string_latin1(env, argv[1], ip, sizeof ip, &iplen));
  CHECK(napi_get_value_int32(env, argv[2], &port));
  CHECK(napi_get_value_int32(env, argv[3], &rcvmax));
  struct sockaddr_storage ss;
  socklen_t sl;
  if (iplen >= sizeof ip - 1 || fill_addr(af, ip, port, &ss, &sl) != 0) return throw_errno(env, -EINVAL, "bind");
  int fd = socket(af == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, -errno, "socket");
  int one = 1;
  if (af == 6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, -e, "bind");
  }
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  int bound = ntohs(af == 6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
  /* raise SO_RCVBUF towards rcvmax, halving on refusal (the kernel caps it at rmem_max) */
  int cur = 0;
  socklen_t ol = sizeof cur;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cur, &ol);
  for (int size = rcvmax; size > cur; size /= 2) {
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0) {
      ol = sizeof cur;
      getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cur, &ol);
      break;
    }
  }
  napi_value out, v;
  CHECK(napi_create_array_with_length(env, 3, &out));
  CHECK(napi_create_int32(env, fd, &v));
  CHECK(napi_set_element(env, out, 0, v));
  CHECK(napi_create_int32(env, bound, &v));
  CHECK(napi_set_element(env, out, 1, v));
  CHECK(napi_create_int32(env, cur, &v));
  CHECK(napi_set_element(env, out, 2, v));
  return out;
}

/* send(fd, af, buf, ip, port) -> 0 or -errno (EAGAIN included: the datagram is dropped) */
static napi_value sock_send(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd, af, port;
  void *data;
  size_t len, iplen;
  char ip[64];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &af));
  CHECK(napi_get_buffer_info(env, argv[2], &data, &len));
  CHECK(napi_get_value_string_latin1(env, argv[3], ip, sizeof ip, &iplen));
  CHECK(napi_get_value_int32(env, argv[4], &port));
  struct sockaddr_storage ss;
  socklen_t sl;
  int r;
  if (iplen >= sizeof ip - 1 || fill_addr(af, ip, port, &ss, &sl) != 0) {
    r = -EINVAL;
  } else {
    ssize_t n;
    do n = sendto(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&ss, sl);
    while (n < 0 && errno == EINTR);
    r = n < 0 ? -errno : 0;
  }
  napi_value out;
  CHECK(napi_create_int32(env, r, &out));
  return out;
}

static void free_receiver(uv_handle_t *h) {
  receiver_t *r = h->data;
  free(r);
}

static void release_refs(receiver_t *r) {
  napi_env env = r->env;
  napi_delete_reference(env, r->buf_ref);
  napi_delete_reference(env, r->meta_ref);
  napi_delete_reference(env, r->cb_ref);
  napi_delete_reference(env, r->res_ref);
  napi_async_destroy(env, r->actx);
}

static void finish_stop(receiver_t *r) {
  release_refs(r);
  uv_close((uv_handle_t *)&r->poll, free_receiver);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  receiver_t *r = h->data;
  napi_env env = r->env;
  (void)events;
  for (int round = 0; round < ROUNDS; round++) {
    int n;
    if (status < 0) {
      n = status; /* libuv's errors are negative errnos on Unix */
    } else {
      for (int i = 0; i < BATCH; i++) {
        r->iov[i].iov_base = r->buf + (size_t)i * SLOT;
        r->iov[i].iov_len = SLOT;
        memset(&r->msgs[i].msg_hdr, 0, sizeof r->msgs[i].msg_hdr);
        r->msgs[i].msg_hdr.msg_iov = &r->iov[i];
        r->msgs[i].msg_hdr.msg_iovlen = 1;
        r->msgs[i].msg_hdr.msg_name = &r->from[i];
        r->msgs[i].msg_hdr.msg_namelen = sizeof r->from[i];
      }
      do n = recvmmsg(r->fd, r->msgs, BATCH, MSG_DONTWAIT, NULL);
      while (n < 0 && errno == EINTR);
    }
    if (n == 0) return;
    if (n < 0 && status >= 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      n = -e; /* reported to JavaScript as a negative count */
    }
    for (int i = 0; i < n; i++) {
      int32_t *m = r->meta + i * META;
      m[0] = (int32_t)r->msgs[i].msg_len;
      if (r->from[i].ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&r->from[i];
        char *t = (char *)r->buf + (size_t)BATCH * SLOT + (size_t)i * TEXT;
        m[1] = ntohs(a->sin6_port);
        m[2] = 6;
        m[4] = inet_ntop(AF_INET6, &a->sin6_addr, t, TEXT) ? (int32_t)strlen(t) : 0;
      } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&r->from[i];
        m[1] = ntohs(a->sin_port);
        m[2] = 4;
        memcpy(&m[4], &a->sin_addr, 4);
      }
    }
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value cb, res, arg, ret;
    napi_get_reference_value(env, r->cb_ref, &cb);
    napi_get_reference_value(env, r->res_ref, &res);
    napi_create_int32(env, n, &arg);
    /* napi_make_callback, not napi_call_function: it drains the microtask and nextTick
       queues afterwards, as node:dgram's callback does (the script resumes in them) */
    r->in_cb = 1;
    napi_status st = napi_make_callback(env, r->actx, res, cb, 1, &arg, &ret);
    r->in_cb = 0;
    if (st == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
    napi_close_handle_scope(env, scope);
    if (r->closing) {
      /* stopped by the callback: the async context is released only now that it is unused */
      finish_stop(r);
      return;
    }
    if (n < BATCH) return;
  }
}

/* start(fd, buf: ArrayBuffer (BATCH*(SLOT+TEXT)), meta: Int32Array (BATCH*META), cb(count)) -> handle */
static napi_value recv_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  void *buf;
  size_t buflen;
  CHECK(napi_get_arraybuffer_info(env, argv[1], &buf, &buflen));
  napi_typedarray_type tt;
  size_t mlen, moff;
  void *meta;
  napi_value mab;
  CHECK(napi_get_typedarray_info(env, argv[2], &tt, &mlen, &meta, &mab, &moff));
  if (buflen < (size_t)BATCH * (SLOT + TEXT) || tt != napi_int32_array || mlen < BATCH * META) {
    napi_throw_range_error(env, NULL, "ser_udp: receive buffers too small");
    return NULL;
  }
  receiver_t *r = calloc(1, sizeof *r);
  if (!r) {
    napi_throw_error(env, NULL, "ser_udp: out of memory");
    return NULL;
  }
  r->env = env;
  r->fd = fd;
  r->buf = buf;
  r->meta = meta;
  napi_value res, name;
  CHECK(napi_create_object(env, &res));
  CHECK(napi_create_string_utf8(env, "SER_UDP", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, res, name, &r->actx));
  CHECK(napi_create_reference(env, argv[1], 1, &r->buf_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &r->meta_ref));
  CHECK(napi_create_reference(env, argv[3], 1, &r->cb_ref));
  CHECK(napi_create_reference(env, res, 1, &r->res_ref));
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  int e = uv_poll_init(loop, &r->poll, fd);
  if (e == 0) {
    r->poll.data = r;
    e = uv_poll_start(&r->poll, UV_READABLE, on_readable);
    if (e != 0) {
      release_refs(r);
      uv_close((uv_handle_t *)&r->poll, free_receiver);
      return throw_errno(env, e, "uv_poll_start");
    }
  } else {
    release_refs(r);
    free(r);
    return throw_errno(env, e, "uv_poll_init");
  }
  napi_value ext;
  CHECK(napi_create_external(env, r, NULL, NULL, &ext));
  return ext;
}

/* stop(handle, fd): stops reading, closes the socket; the handle is dead afterwards */
static napi_value recv_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  receiver_t *r;
  CHECK(napi_get_value_external(env, argv[0], (void **)&r));
  if (r->closing) return NULL;
  r->closing = 1;
  uv_poll_stop(&r->poll);
  close(r->fd);
  if (!r->in_cb) finish_stop(r);
  return NULL;
}

/* close(fd): for a socket opened but never started */
static napi_value sock_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  close(fd);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, sock_open, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, sock_send, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, recv_start, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, recv_stop, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, sock_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value v;
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_create_int32(env, BATCH, &v);
  napi_set_named_property(env, exports, "BATCH", v);
  napi_create_int32(env, SLOT, &v);
  napi_set_named_property(env, exports, "SLOT", v);
  napi_create_int32(env, META, &v);
  napi_set_named_property(env, exports, "META", v);
  napi_create_int32(env, TEXT, &v);
  napi_set_named_property(env, exports, "TEXT", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
