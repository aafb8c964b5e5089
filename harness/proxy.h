/* `faultline proxy`: the fault proxy on its own, driven by a JSON control API. */
#ifndef FL_PROXY_H
#define FL_PROXY_H

/* argv[0] is "proxy"; returns the exit code (0, or 2 on bad usage or a busy address). */
int fl_proxy_main(int argc, char **argv);

#endif
