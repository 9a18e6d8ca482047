{
  "targets": [
    {
      "target_name": "lvmfs",
      "sources": ["native/lvmfs.cc", "native/blockdev.cc", "native/loop-device.cc", "native/mount.cc", "native/volume.cc",
                  "native/volume-spec.cc", "native/volume-io.cc", "native/volume-io-binding.cc",
                  "native/faults.cc", "native/worker-pool.cc", "native/transfers.cc", "native/session.cc", "native/session-ring.cc",
                  "native/session-thin.cc",
                  "native/range-copy.cc", "native/remote-target.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fno-exceptions"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "conditions": [
        ["<!(test -f /usr/include/liburing.h && echo 1 || echo 0)==1", {
          "defines": ["LVMFS_HAVE_URING"],
          "libraries": ["-l:liburing.a"]
        }],
        ["<!(test -f /usr/include/libnbd.h && echo 1 || echo 0)==1", {
          "defines": ["LVMFS_HAVE_NBD"],
          "sources": ["native/nbd-client.cc"],
          "libraries": ["-lnbd"]
        }],
        ["<!(test -f /usr/include/xxhash.h && echo 1 || echo 0)==1", {
          "defines": ["LVMFS_HAVE_XXHASH"],
          "sources": ["native/block-hash.cc"]
        }]
      ]
    }
  ]
}
