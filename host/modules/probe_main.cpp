// wharf-plugin-probe FILE: loads a plugin binary in a throwaway process and
// prints its entry point and manifest as JSON (see plugin_probe.hpp).
#include <iostream>

#include "modules/plugin_probe.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: wharf-plugin-probe FILE\n";
        return 64;
    }
    return wharf::host::run_probe(argv[1]);
}
