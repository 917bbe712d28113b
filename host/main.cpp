#include "app/app.hpp"

int main(int argc, char** argv) { return eventflow::app::run(argc, argv); }
