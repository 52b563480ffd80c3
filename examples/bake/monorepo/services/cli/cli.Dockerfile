FROM base
COPY main.txt /usr/share/cli/
RUN ls /usr/share/cli > /usr/share/cli/index
