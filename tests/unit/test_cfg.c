#include "tests/harness/check.h"
int main(void)
{
    rh_check_skip("not written yet");
}
