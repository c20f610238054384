# Writes the bytes of IN as a C array NAME (and NAME_len) into OUT: files served as they are.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR len "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* Generated from ${IN} by shards/embed.cmake. */\n"
                  "const unsigned char ${NAME}[] = {${bytes}0};\n"
                  "const unsigned int ${NAME}_len = ${len};\n")
